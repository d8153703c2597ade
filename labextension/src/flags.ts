/**
 * The `%%llm` flag grammar, the same as the kernel magic's (cellmage_server/flags.py): both are
 * tested against tests/flag_cases.json. Pure: no JupyterLab imports.
 */

export const MAGIC = '%%llm';

export const USAGE =
  'usage: %%llm [-m MODEL] [-t TEMPERATURE] [-p PERSONA] [--max-tokens N] ' +
  '[--stream | --no-stream] [--no-history] [--alone] [--no-rollback] [--param KEY VALUE] [-o NAME] ' +
  '[--cells N] [--error] [--var NAME] [--snippet NAME] [--sys-snippet NAME]';

/** A parameter's name, as the wire contract spells fields (the server says which it accepts). */
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/; // no leading "_": never __proto__

/** 'list': takes a value, and may be given again (each value is kept, in order); 'pair': a key and a value. */
type Kind = 'str' | 'float' | 'int' | 'list' | 'pair' | 'true' | 'false';

interface IFlag {
  names: string[];
  dest: keyof ICellFlags;
  kind: Kind;
  lo?: number;
  hi?: number;
}

const FLAGS: IFlag[] = [
  { names: ['-m', '--model'], dest: 'model', kind: 'str' },
  { names: ['-t', '--temperature'], dest: 'temperature', kind: 'float', lo: 0, hi: 2 },
  { names: ['-p', '--persona'], dest: 'persona', kind: 'str' },
  { names: ['--max-tokens'], dest: 'max_tokens', kind: 'int', lo: 1 },
  { names: ['--stream'], dest: 'stream', kind: 'true' },
  { names: ['--no-stream'], dest: 'stream', kind: 'false' },
  { names: ['--no-history'], dest: 'remember', kind: 'false' },
  { names: ['--alone'], dest: 'history', kind: 'false' },
  { names: ['--no-rollback'], dest: 'rollback', kind: 'false' },
  { names: ['--param'], dest: 'params', kind: 'pair' },
  { names: ['-o', '--output'], dest: 'output', kind: 'str' },
  // Context: what of the notebook the answer sees (README "Context").
  { names: ['--cells'], dest: 'cells', kind: 'int', lo: 1, hi: 100 },
  { names: ['--error'], dest: 'error', kind: 'true' },
  { names: ['--var'], dest: 'vars', kind: 'list' },
  { names: ['--snippet'], dest: 'snippets', kind: 'list' },
  { names: ['--sys-snippet'], dest: 'sys_snippets', kind: 'list' }
];

/** What a flag line set; absent keys were not given. */
export interface ICellFlags {
  model?: string;
  temperature?: number;
  persona?: string;
  max_tokens?: number;
  stream?: boolean;
  history?: boolean;
  remember?: boolean;
  rollback?: boolean;
  params?: Record<string, unknown>;
  output?: string;
  cells?: number;
  error?: boolean;
  vars?: string[];
  snippets?: string[];
  sys_snippets?: string[];
}

/** A flag line that cannot be read; the message ends with the usage line. */
export class FlagError extends Error {
  constructor(message: string) {
    super(`${message}\n${USAGE}`);
    this.name = 'FlagError';
  }
}

/** Split like Python's shlex.split (POSIX): quotes and backslashes, whitespace between words. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) {
        quote = null;
      } else if (ch === '\\' && quote === '"' && i + 1 < line.length && '\\"$`\n'.includes(line[i + 1])) {
        word += line[++i];
      } else {
        word += ch;
      }
    } else if (/\s/.test(ch)) {
      if (word !== null) {
        words.push(word);
        word = null;
      }
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word = word ?? '';
    } else if (ch === '\\') {
      if (i + 1 >= line.length) {
        throw new FlagError('cannot read the flags: No escaped character');
      }
      word = (word ?? '') + line[++i];
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (quote) {
    throw new FlagError('cannot read the flags: No closing quotation');
  }
  if (word !== null) {
    words.push(word);
  }
  return words;
}

function isIdentifier(text: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(text);
}

/**
 * A parameter's value as written: a JSON number, `true`/`false` or array is that value; anything
 * else is the text itself (`--param stop END`). The same as flags.py's param_value.
 */
export function paramValue(raw: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return raw;
  }
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : raw;
  }
  return typeof value === 'boolean' || Array.isArray(value) ? value : raw;
}

function convert(flag: IFlag, name: string, raw: string): string | number {
  if (flag.kind === 'str' || flag.kind === 'list') {
    if (!raw || raw.startsWith('-')) {
      throw new FlagError(`${name} needs a value`);
    }
    if ((flag.dest === 'output' || flag.dest === 'vars') && !isIdentifier(raw)) {
      throw new FlagError(`${name} needs a Python variable name, not '${raw}'`);
    }
    return raw;
  }
  const value = Number(raw.trim());
  const valid = raw.trim() !== '' && Number.isFinite(value) && (flag.kind !== 'int' || /^[+-]?\d+$/.test(raw.trim()));
  if (!valid) {
    const kind = flag.kind === 'int' ? 'a whole number' : 'a number';
    throw new FlagError(`${name} needs ${kind}, not '${raw}'`);
  }
  if ((flag.lo !== undefined && value < flag.lo) || (flag.hi !== undefined && value > flag.hi)) {
    const bounds = flag.hi !== undefined ? `from ${flag.lo} to ${flag.hi}` : `at least ${flag.lo}`;
    throw new FlagError(`${name} must be ${bounds}, not ${raw}`);
  }
  return value;
}

/** Parse the flags after `%%llm`, or throw a FlagError. */
export function parseFlags(line: string): ICellFlags {
  const words = shellWords(line);
  const flags: Record<string, unknown> = {};
  const given: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    let name = word;
    let inline: string | null = null;
    if (word.startsWith('--') && word.includes('=')) {
      name = word.slice(0, word.indexOf('='));
      inline = word.slice(word.indexOf('=') + 1);
    }
    const flag = FLAGS.find(f => f.names.includes(name));
    if (!flag) {
      throw new FlagError(word.startsWith('-') ? `unknown flag '${word}'` : `unexpected word '${word}'`);
    }
    if (flag.kind === 'true' || flag.kind === 'false') {
      if (inline !== null) {
        throw new FlagError(`${name} takes no value`);
      }
      flags[flag.dest] = flag.kind === 'true';
    } else if (flag.kind === 'pair') {
      if (inline !== null || i + 2 >= words.length) {
        throw new FlagError(`${name} needs a name and a value (--param top_p 0.9)`);
      }
      const key = words[i + 1];
      if (!PARAM_NAME.test(key)) {
        throw new FlagError(`${name} needs a parameter name, not '${key}'`);
      }
      const params = (flags[flag.dest] as Record<string, unknown> | undefined) ?? {};
      params[key] = paramValue(words[i + 2]);
      flags[flag.dest] = params;
      i += 2;
    } else {
      let raw: string;
      if (inline !== null) {
        raw = inline;
      } else if (i + 1 < words.length) {
        raw = words[++i];
      } else {
        throw new FlagError(`${name} needs a value`);
      }
      const value = convert(flag, name, raw);
      flags[flag.dest] = flag.kind === 'list' ? [...((flags[flag.dest] as string[]) ?? []), value] : value;
    }
    given.push(name);
  }
  if (given.includes('--stream') && given.includes('--no-stream')) {
    throw new FlagError('--stream and --no-stream contradict each other');
  }
  return flags as ICellFlags;
}

/** A cell's text: the flags of a first `%%llm` line (if any) and the prompt after it. */
export function splitCell(text: string): { flags: ICellFlags; prompt: string } {
  const newline = text.indexOf('\n');
  const first = newline === -1 ? text : text.slice(0, newline);
  const rest = newline === -1 ? '' : text.slice(newline + 1);
  const trimmed = first.trim();
  if (trimmed === MAGIC || first.trimStart().startsWith(MAGIC + ' ')) {
    return { flags: parseFlags(trimmed.slice(MAGIC.length)), prompt: rest };
  }
  return { flags: {}, prompt: text };
}
