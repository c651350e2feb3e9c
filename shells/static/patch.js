// RFC 6902 JSON Patch, as the panel's mirror applies the kernel's deltas (protocol v1).
// The Python side's one implementation is vtkernel.engine.delta; this is the browser's.

function parsePointer(pointer) {
  if (pointer === "") return [];
  if (pointer[0] !== "/") throw new Error(`bad JSON pointer ${pointer}`);
  return pointer.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function arrayIndex(arr, seg, insert) {
  if (insert && seg === "-") return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(seg)) throw new Error(`bad array index ${seg}`);
  const i = Number(seg);
  if (i > arr.length || (!insert && i === arr.length)) throw new Error(`index ${i} out of range`);
  return i;
}

function shallow(node) {
  if (Array.isArray(node)) return node.slice();
  if (node !== null && typeof node === "object") return { ...node };
  throw new Error("cannot descend into a scalar");
}

function getAt(doc, parts) {
  let node = doc;
  for (const seg of parts) {
    if (Array.isArray(node)) node = node[arrayIndex(node, seg, false)];
    else if (node !== null && typeof node === "object" && Object.hasOwn(node, seg)) node = node[seg];
    else throw new Error(`no member ${seg}`);
  }
  return node;
}

// Copy the containers along `parts`, then edit the parent of the last segment.
function editAt(doc, parts, edit) {
  if (parts.length === 0) throw new Error("cannot edit the root this way");
  const root = shallow(doc);
  let node = root;
  for (const seg of parts.slice(0, -1)) {
    let key = seg;
    if (Array.isArray(node)) key = arrayIndex(node, seg, false);
    else if (!Object.hasOwn(node, seg)) throw new Error(`no member ${seg}`);
    node[key] = shallow(node[key]);
    node = node[key];
  }
  edit(node, parts[parts.length - 1]);
  return root;
}

/** Apply RFC 6902 ops; returns a new document and leaves `doc` untouched. Throws on a bad patch. */
export function applyPatch(doc, ops) {
  for (const op of ops) {
    const parts = parsePointer(op.path);
    switch (op.op) {
      case "add":
        doc = parts.length === 0 ? op.value : editAt(doc, parts, (p, k) => {
          if (Array.isArray(p)) p.splice(arrayIndex(p, k, true), 0, op.value);
          else p[k] = op.value;
        });
        break;
      case "remove":
        doc = editAt(doc, parts, (p, k) => {
          if (Array.isArray(p)) p.splice(arrayIndex(p, k, false), 1);
          else if (Object.hasOwn(p, k)) delete p[k];
          else throw new Error(`no member ${k} to remove`);
        });
        break;
      case "replace":
        doc = parts.length === 0 ? op.value : editAt(doc, parts, (p, k) => {
          if (Array.isArray(p)) p[arrayIndex(p, k, false)] = op.value;
          else if (Object.hasOwn(p, k)) p[k] = op.value;
          else throw new Error(`no member ${k} to replace`);
        });
        break;
      case "move":
      case "copy": {
        const from = parsePointer(op.from);
        const value = getAt(doc, from);
        if (op.op === "move") doc = editAt(doc, from, (p, k) => (Array.isArray(p) ? p.splice(Number(k), 1) : delete p[k]));
        doc = parts.length === 0 ? value : editAt(doc, parts, (p, k) => {
          if (Array.isArray(p)) p.splice(arrayIndex(p, k, true), 0, value);
          else p[k] = value;
        });
        break;
      }
      case "test":
        if (JSON.stringify(getAt(doc, parts)) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`);
        break;
      default:
        throw new Error(`unknown patch op ${op.op}`);
    }
  }
  return doc;
}
