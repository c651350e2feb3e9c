// Strudel 1.1 as a reference for vtkernel's pattern tests and benchmarks.
//
// A long-running process speaking JSON lines. Each request on stdin is one object:
//   {"id": 1, "mini": "bd*2 [~ sd]", "spans": [["0", "4"], ["1/3", "7/2"]]}
//   {"id": 2, "expr": "s(\"bd sd\").fast(2)", "spans": [["0", "2"]]}
//   {"id": 3, "bench": "<mini or expr>", "kind": "mini", "cycles": 64, "repeats": 7}
// and each answer on stdout is one object with the same id:
//   {"id": 1, "results": [{"haps": [{"whole": ["0/1", "1/2"], "part": [...], "value": "bd"}, ...]}, ...]}
//   {"id": 1, "error": "one line"}            (parse or evaluation error)
// A query that throws gives {"error": ...} in place of that span's {"haps": ...}: we call
// pattern.query(State) rather than queryArc, which swallows errors and returns [].
// Fractions are exact strings "n/d"; numbers that JSON cannot carry are {"$num": "NaN"} etc.
// Strings in expressions are mini-notation, as in Strudel's REPL (miniAllStrings).

import readline from 'node:readline';

// @strudel/core prints a banner with console.log when it loads; stdout is our channel.
const log = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
console.log = log;
console.info = log;
console.warn = log;
console.error = log;

const core = await import('@strudel/core');
const miniPkg = await import('@strudel/mini');
const tonal = await import('@strudel/tonal');
miniPkg.miniAllStrings();

const scope = { ...core, ...tonal, ...miniPkg };
delete scope.default;
const names = Object.keys(scope).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k));
const values = names.map((k) => scope[k]);

const frac = (f) => `${f.s * f.n}/${f.d}`;

function encode(v) {
  if (typeof v === 'number') {
    return Number.isFinite(v) ? v : { $num: String(v) };
  }
  if (Array.isArray(v)) {
    return v.map(encode);
  }
  if (v && typeof v === 'object') {
    if (v instanceof core.Fraction._original) {
      return { $frac: frac(v) };
    }
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = encode(x);
    }
    return out;
  }
  return v === undefined ? { $undefined: true } : v;
}

// The krill AST in a compact form that tests/patterns/strudel.py mirrors for vtkernel's parser.
// Atoms are located at their first character (krill's location includes leading whitespace).
let compactCode = '';
const atomOffset = (node) => {
  let p = node.location_.start.offset;
  while (' \n\r\t\u00a0'.includes(compactCode[p])) p++;
  return p;
};

function compact(node) {
  if (node === null || node === undefined) return null;
  switch (node.type_) {
    case 'atom':
      return ['atom', node.source_, atomOffset(node)];
    case 'pattern': {
      const a = node.arguments_;
      return ['pat', a.alignment, a.seed ?? null, compact(a.stepsPerCycle), node.source_.map(compact)];
    }
    case 'element': {
      const o = node.options_;
      return ['el', compact(node.source_), o.weight, o.reps, o.ops.map(compactOp)];
    }
    default:
      throw new Error(`unknown krill node ${node.type_}`);
  }
}

function compactOp(op) {
  const a = op.arguments_;
  switch (op.type_) {
    case 'stretch':
      return [a.type, compact(a.amount)];
    case 'replicate':
      return ['rep', a.amount];
    case 'bjorklund':
      return ['euclid', compact(a.pulse), compact(a.step), compact(a.rotation)];
    case 'degradeBy':
      return ['deg', a.amount ?? null, a.seed];
    case 'tail':
      return ['tail', compact(a.element)];
    case 'range':
      return ['range', compact(a.element)];
    default:
      throw new Error(`unknown krill op ${op.type_}`);
  }
}

// Parse errors with krill's own offset (mini2ast drops it); column 1 is the text's first character.
function parseKrill(text) {
  compactCode = `"${text}"`;
  try {
    return miniPkg.parse(compactCode);
  } catch (err) {
    if (err.location) {
      throw new Error(`column ${err.location.start.offset}: ${err.message}`);
    }
    throw err;
  }
}

function build(req) {
  if (req.mini !== undefined) {
    return miniPkg.mini(req.mini);
  }
  const fn = new Function(...names, `"use strict"; return (${req.expr});`);
  const pat = fn(...values);
  return core.reify(pat);
}

function query(pat, b, e) {
  const state = new core.State(new core.TimeSpan(core.Fraction(b), core.Fraction(e)));
  return pat.query(state).map((h) => ({
    whole: h.whole ? [frac(h.whole.begin), frac(h.whole.end)] : null,
    part: [frac(h.part.begin), frac(h.part.end)],
    value: encode(h.value),
  }));
}

const oneLine = (err) => String(err && err.message !== undefined ? err.message : err).split('\n')[0];

function bench(req) {
  const pat = build(req);
  const cycles = req.cycles ?? 64;
  const times = [];
  let count = 0;
  for (let r = 0; r < (req.repeats ?? 7); r++) {
    const t0 = process.hrtime.bigint();
    for (let c = 0; c < cycles; c++) {
      count += pat.queryArc(c, c + 1).length;
    }
    times.push(Number(process.hrtime.bigint() - t0) / 1e9 / cycles);
  }
  return { seconds_per_cycle: times, haps: count };
}

function handle(req) {
  let pat;
  try {
    if (req.ast !== undefined) {
      return { id: req.id, ast: compact(parseKrill(req.ast)) };
    }
    if (req.bench !== undefined) {
      return { id: req.id, ...bench({ ...req, [req.kind ?? 'mini']: req.bench }) };
    }
    pat = build(req);
  } catch (err) {
    return { id: req.id, error: oneLine(err) };
  }
  const results = (req.spans ?? [['0', '1']]).map(([b, e]) => {
    try {
      return { haps: query(pat, b, e) };
    } catch (err) {
      return { error: oneLine(err) };
    }
  });
  return { id: req.id, results };
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
process.stdout.write(JSON.stringify({ ready: true, version: '1.1.0' }) + '\n');
for await (const line of rl) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = handle(JSON.parse(line));
  } catch (err) {
    answer = { error: oneLine(err) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
