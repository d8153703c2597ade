/** Marks an output as an answer of this extension; its data is `{ markdown }` (safe Markdown). */
export const ANSWER_MIME = 'application/vnd.cellmage.answer+json';
