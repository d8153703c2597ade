/**
 * What the Markdown benchmark streams and where: a realistic 70-cell analysis notebook (code cells
 * with their source and stored outputs — printed text, data-frame tables, a plot — and Markdown
 * cells), and a Markdown-heavy answer of a given size (headings, lists, tables, fenced code in
 * Python, JavaScript and Bash, inline code, a little math), cut into ~100-byte chunks as a model
 * streams them. Deterministic: every run streams the same bytes.
 *
 * The answer carries markers (`zq<n>zq`, one in about every kilobyte of prose) so the page can tell
 * when a given piece of text arrived and when it showed (render.bench.ts).
 */
import * as zlib from 'zlib';

/** A marker word, as it appears in the answer's text; never a part of another one. */
export const MARKER = /zq\d+zq/g;

// --- the answer -----------------------------------------------------------------------------------

const TOPICS = [
  'Loading the raw sensor exports',
  'Cleaning timestamps and time zones',
  'Handling missing readings',
  'Resampling to a regular grid',
  'Detecting outliers robustly',
  'Joining the station metadata',
  'Aggregating per station and per day',
  'Serving the results to the dashboard',
  'Testing the pipeline',
  'Scheduling the nightly run'
];

const PROSE = [
  'The slowest step in your notebook is not the arithmetic but the repeated parsing: every call to `pd.read_csv` re-reads the same 40 files and infers their types again. Parse once, store the result as Parquet, and later cells load it in a fraction of a second. With $n$ files of $m$ rows each the parsing cost is $O(nm)$ either way, but you pay it once instead of on every kernel restart',
  'Keep the raw data untouched and derive everything else from it. When a step turns out to be wrong (a time zone, a unit, a sensor that was mounted upside down) you fix the step and run it again, instead of trying to undo an edit in place. The `raw/` folder stays read-only; `interim/` and `processed/` can always be rebuilt',
  'Readings arrive every 30 seconds in theory, but the loggers drift and sometimes skip a beat. If you average over a window of $w$ samples, a gap shifts the window and the mean $\\bar{x} = \\frac{1}{w}\\sum_{i=1}^{w} x_i$ silently covers a longer period than you think. Resample to a fixed grid first with `df.resample("1min")`, then decide explicitly how to fill',
  'Prefer the median and the median absolute deviation over the mean and the standard deviation when you look for spikes: a single broken sensor reporting 9999 moves the mean a lot and the median not at all. A point is suspicious when $|x_i - \\tilde{x}| > k \\cdot \\mathrm{MAD}$ with $k$ around 3.5, which is the rule the cell below applies per station',
  'Vectorised operations beat explicit loops by two orders of magnitude here. The loop over `df.iterrows()` in cell 23 does one Python call per row; the same logic as a boolean mask runs in C over the whole column. On 2.4 million rows that is the difference between four minutes and two seconds',
  'Be explicit about units at the boundary. The older stations report temperature in tenths of a degree and humidity as a fraction, the newer ones in degrees and percent. Convert as the data enters the pipeline, keep a `units` column until you have checked every station, and drop it only when the checks pass',
  'Memory is the next limit you will hit. The frame holds 2.4 million rows and 14 columns, mostly `float64`; downcasting the readings to `float32` and the station ids to a `category` halves its size without losing anything you need, and the group-bys get faster because the keys are small integers',
  'Write the checks down as code rather than as a paragraph in the notebook. A failing assertion in the nightly run tells you which station and which day broke; a comment only tells you what you hoped was true. The tests below take less than a second and cover the cases that bit us last quarter'
];

const LIST_ITEMS = [
  '**Schema first**: declare the column types in `dtype=` so a stray string does not turn a column into `object`.',
  '**Time zones**: store UTC, convert only for display with `tz_convert("Europe/Berlin")`.',
  '**Gaps**: forward-fill at most 5 minutes; longer gaps stay `NaN` and are reported.',
  '**Outliers**: flag, do not delete; keep a boolean `suspect` column next to the reading.',
  '**Idempotence**: running a step twice gives the same files, byte for byte.',
  '**Provenance**: every output file records the commit and the input checksums.',
  '**Logging**: one line per station and step, with the row counts before and after.',
  '**Sizes**: Parquet with `zstd` compression is about 8 times smaller than the CSV exports.'
];

const TABLE_ROWS = [
  ['`station_id`', 'category', '0', 'joined with `stations.csv`'],
  ['`ts`', 'datetime64[ns, UTC]', '0', 'parsed from ISO 8601'],
  ['`temp_c`', 'float32', '1.8 %', 'older loggers report tenths'],
  ['`rh_pct`', 'float32', '2.3 %', 'fraction on stations < 200'],
  ['`pm25`', 'float32', '6.1 %', 'sensor warms up for 10 min'],
  ['`no2`', 'float32', '4.4 %', 'negative values clipped to 0'],
  ['`battery_v`', 'float32', '0.2 %', 'below 3.3 V readings drift'],
  ['`suspect`', 'bool', '0', 'set by the MAD rule']
];

const CODE: Record<string, string[]> = {
  python: [
    'import pandas as pd',
    'import numpy as np',
    '',
    'def robust_flags(df: pd.DataFrame, column: str, k: float = 3.5) -> pd.Series:',
    '    """True where a reading is far from its station\'s median (MAD rule)."""',
    '    grouped = df.groupby("station_id", observed=True)[column]',
    '    median = grouped.transform("median")',
    '    mad = grouped.transform(lambda s: (s - s.median()).abs().median())',
    '    return (df[column] - median).abs() > k * mad.replace(0, np.nan)',
    '',
    'readings = pd.read_parquet("interim/readings.parquet")',
    'readings["suspect"] = robust_flags(readings, "pm25")',
    'daily = (',
    '    readings[~readings["suspect"]]',
    '    .set_index("ts")',
    '    .groupby("station_id", observed=True)',
    '    .resample("1D")["pm25"]',
    '    .agg(["mean", "max", "count"])',
    ')',
    'print(daily.head())'
  ],
  javascript: [
    'import { tableFromIPC } from "apache-arrow";',
    '',
    'export async function loadDaily(station, signal) {',
    '  const response = await fetch(`/api/daily/${encodeURIComponent(station)}`, { signal });',
    '  if (!response.ok) {',
    '    throw new Error(`daily data for ${station}: HTTP ${response.status}`);',
    '  }',
    '  const table = tableFromIPC(new Uint8Array(await response.arrayBuffer()));',
    '  return table.toArray().map(row => ({',
    '    day: new Date(row.ts),',
    '    mean: row.mean,',
    '    max: row.max,',
    '    complete: row.count >= 1380 // 96 % of the minutes of a day',
    '  }));',
    '}'
  ],
  bash: [
    '#!/usr/bin/env bash',
    'set -euo pipefail',
    '',
    'export TZ=UTC',
    'cd /srv/airquality',
    'source .venv/bin/activate',
    '',
    'python -m pipeline.fetch --since "$(date -d yesterday +%F)" --out raw/',
    'python -m pipeline.clean raw/ interim/readings.parquet',
    'python -m pipeline.aggregate interim/readings.parquet processed/daily.parquet',
    'pytest -q tests/ || { echo "checks failed, not publishing" >&2; exit 1; }',
    'rsync -a processed/ dashboard:/var/www/airquality/data/'
  ]
};
const LANGUAGES = ['python', 'javascript', 'bash'];

/** The blocks of one section of the answer, each a top-level Markdown block. */
function section(k: number, marker: () => string): string[] {
  const prose = (i: number) => `${PROSE[(k * 3 + i) % PROSE.length]} (see note ${marker()}).`;
  const items = (n: number, ordered: boolean) =>
    Array.from({ length: n }, (_, i) => `${ordered ? `${i + 1}.` : '-'} ${LIST_ITEMS[(k + i) % LIST_ITEMS.length]}`).join('\n');
  const language = LANGUAGES[k % LANGUAGES.length];
  const lines = CODE[language];
  const code = lines.slice(0, lines.length - (k % 4)).join('\n');
  const rows = TABLE_ROWS.slice(k % 3, (k % 3) + 6).map(r => `| ${r.join(' | ')} |`);
  return [
    `## ${k + 1}. ${TOPICS[k % TOPICS.length]}`,
    prose(0),
    items(4 + (k % 3), false),
    '```' + language + '\n' + code + '\n```',
    prose(1),
    ['| Column | Type | Missing | Notes |', '|---|---|---|---|', ...rows].join('\n'),
    `### ${k + 1}.1 What to check`,
    items(3, true),
    prose(2)
  ];
}

/** A Markdown answer of about `bytes` bytes (ASCII, so bytes = characters), cut between blocks. */
export function markdownAnswer(bytes: number): { text: string; markers: number } {
  let next = 0;
  const marker = () => `zq${++next}zq`;
  const blocks = ['Here is how I would restructure the analysis, step by step, with the code for each step.'];
  let length = blocks[0].length;
  for (let k = 0; length < bytes; k++) {
    for (const block of section(k, marker)) {
      if (length >= bytes) {
        break;
      }
      blocks.push(block);
      length += block.length + 2;
    }
  }
  const text = blocks.join('\n\n') + '\n';
  return { text, markers: text.match(MARKER)?.length ?? 0 };
}

/** `text` as a model streams it: pieces of about `size` bytes, cut after a space or newline so
 * that no marker is split (the page would still find a split one; this keeps the pacing even). */
export function chunked(text: string, size: number): string[] {
  const chunks: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    while (end < text.length && !/\s/.test(text[end - 1])) {
      end++;
    }
    chunks.push(text.slice(start, end));
    start = end;
  }
  return chunks;
}

// --- the notebook ---------------------------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) {
    c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** A 480×240 line plot (one series per seed) as a base64 PNG, as matplotlib would store it. */
function plot(seed: number): string {
  const [width, height] = [480, 240];
  const pixels = Buffer.alloc((width * 3 + 1) * height, 255);
  const y = (x: number) => Math.round(height / 2 + (height / 3) * Math.sin((x + seed * 37) / 40) * Math.cos(x / 151));
  for (let x = 0; x < width; x++) {
    for (let dy = -1; dy <= 1; dy++) {
      const row = Math.min(height - 1, Math.max(0, y(x) + dy));
      pixels.set([31, 119, 180], row * (width * 3 + 1) + 1 + x * 3);
    }
  }
  for (let row = 0; row < height; row++) {
    pixels[row * (width * 3 + 1)] = 0; // filter: none
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0))
  ]).toString('base64');
}

/** A data frame's head as pandas shows it: text/html and text/plain. */
function frame(seed: number, rows = 10): Record<string, string> {
  const columns = ['station_id', 'ts', 'temp_c', 'rh_pct', 'pm25', 'no2'];
  const values = Array.from({ length: rows }, (_, r) => [
    `ST${String(100 + ((seed + r) % 40)).padStart(3, '0')}`,
    `2024-03-${String(1 + (r % 28)).padStart(2, '0')} 0${r % 10}:00:00+00:00`,
    (11 + ((seed * 7 + r * 3) % 90) / 10).toFixed(1),
    (40 + ((seed * 11 + r * 5) % 500) / 10).toFixed(1),
    (5 + ((seed * 13 + r * 7) % 300) / 10).toFixed(1),
    (8 + ((seed * 17 + r * 11) % 400) / 10).toFixed(1)
  ]);
  const html =
    '<div>\n<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n      <th></th>\n' +
    columns.map(c => `      <th>${c}</th>\n`).join('') +
    '    </tr>\n  </thead>\n  <tbody>\n' +
    values.map((v, r) => `    <tr>\n      <th>${r}</th>\n` + v.map(x => `      <td>${x}</td>\n`).join('') + '    </tr>\n').join('') +
    `  </tbody>\n</table>\n<p>${rows} rows × ${columns.length} columns</p>\n</div>`;
  const plain = ['    ' + columns.join('  '), ...values.map((v, r) => `${r}  ${v.join('  ')}`)].join('\n');
  return { 'text/html': html, 'text/plain': plain };
}

type Output = Record<string, unknown>;
const stream = (name: string, lines: string[]): Output => ({ output_type: 'stream', name, text: lines.map(l => l + '\n') });

/** The code cells' sources and outputs, cycled through (seeded by the cell's index). */
const CODE_CELLS: ((i: number) => { source: string; outputs: Output[] })[] = [
  i => ({
    source: `from pathlib import Path\nimport pandas as pd\nimport numpy as np\n\nRAW = Path("raw")\nfiles = sorted(RAW.glob("station_*.csv"))\nprint(len(files), "files")`,
    outputs: [stream('stdout', [`${40 + (i % 3)} files`])]
  }),
  i => ({
    source: `readings = pd.concat(pd.read_csv(f, parse_dates=["ts"]) for f in files)\nreadings.head(10)`,
    outputs: [{ output_type: 'execute_result', execution_count: i, metadata: {}, data: frame(i) }]
  }),
  i => ({
    source: `for station, group in readings.groupby("station_id"):\n    share = group["pm25"].isna().mean()\n    if share > 0.05:\n        print(f"{station}: {share:.1%} missing")`,
    outputs: [stream('stdout', Array.from({ length: 12 }, (_, r) => `ST${100 + ((i + r * 3) % 40)}: ${(5 + ((i * r) % 40) / 10).toFixed(1)}% missing`))]
  }),
  i => ({
    source: `fig, ax = plt.subplots(figsize=(8, 4))\ndaily.loc["ST${100 + (i % 40)}", "mean"].plot(ax=ax)\nax.set_ylabel("PM2.5 (µg/m³)")\nplt.show()`,
    outputs: [{ output_type: 'display_data', metadata: {}, data: { 'image/png': plot(i), 'text/plain': '<Figure size 800x400 with 1 Axes>' } }]
  }),
  i => ({
    source: `readings[["temp_c", "rh_pct", "pm25", "no2"]].describe()`,
    outputs: [{ output_type: 'execute_result', execution_count: i, metadata: {}, data: frame(i + 3, 8) }]
  }),
  i => ({
    source: `def to_utc(df, column="ts", zone="Europe/Berlin"):\n    """Local logger time to UTC; ambiguous hours at the DST change become NaT."""\n    local = df[column].dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")\n    return df.assign(**{column: local.dt.tz_convert("UTC")})\n\nreadings = to_utc(readings)  # cell ${i}`,
    outputs: []
  }),
  i => ({
    source: `clean = readings.dropna(subset=["pm25"])\nclean = clean[clean["battery_v"] > 3.3]\nprint(f"kept {len(clean):,} of {len(readings):,} rows")`,
    outputs: [
      stream('stderr', [`/tmp/ipykernel_${4000 + i}/1234.py:2: SettingWithCopyWarning:`, 'A value is trying to be set on a copy of a slice from a DataFrame.']),
      stream('stdout', [`kept ${(2_300_000 + i * 1711).toLocaleString('en')} of 2,412,980 rows`])
    ]
  })
];

/** A notebook of `cells` cells whose cell `asked` (0-based) is a code cell holding `prompt`. */
export function notebook(cells: number, asked: number, prompt: string): Record<string, unknown> {
  let count = 0;
  const list = Array.from({ length: cells }, (_, i) => {
    const id = `cell-${i}`;
    if (i === asked) {
      return { id, cell_type: 'code', execution_count: null, metadata: {}, source: prompt, outputs: [] };
    }
    if (i % 6 === 0) {
      const topic = TOPICS[(i / 6) % TOPICS.length];
      const source = `## ${topic}\n\n${PROSE[i % PROSE.length]}.\n\n- ${LIST_ITEMS[i % LIST_ITEMS.length]}\n- ${LIST_ITEMS[(i + 1) % LIST_ITEMS.length]}`;
      return { id, cell_type: 'markdown', metadata: {}, source };
    }
    const { source, outputs } = CODE_CELLS[i % CODE_CELLS.length](++count);
    return { id, cell_type: 'code', execution_count: count, metadata: {}, source, outputs };
  });
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python', version: '3.11.7' }
    },
    cells: list
  };
}
