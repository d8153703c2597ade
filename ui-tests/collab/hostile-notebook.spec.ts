/** A notebook from elsewhere cannot drive the page (collaboration on; see ../hostile.ts). */
import { test } from '@jupyterlab/galata';

import { hostileNotebookTests } from '../hostile';

declare const process: { env: Record<string, string | undefined> }; // (no @types/node here)

test.describe('collaboration on', () => {
  test.skip(!process.env.CELLMAGE_UI_COLLAB_FAKE, 'needs real-time collaboration: run with -c playwright.collab.config.js');
  hostileNotebookTests(() => process.env.CELLMAGE_UI_COLLAB_FAKE!);
});
