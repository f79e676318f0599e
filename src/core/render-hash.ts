/**
 * The render hash (v1): a Merkle hash over a rendered tree, so "host X applied exactly what
 * commit S renders for X" is one comparison. Specified in docs/fleet-repo.md so a host can
 * recompute it from its own files:
 *
 *   file    = SHA-256("file " || octal mode || "\n" || content)
 *   symlink = SHA-256("symlink\n" || target)
 *   dir     = SHA-256("dir " || octal mode || "\n" || for each child, by name in byte order:
 *                     name || 0x00 || child hash (32 bytes))
 *   root    = the dir formula with mode "root"; result "sha256:" || lowercase hex
 */
import { createHash } from 'node:crypto';
import { isSharedContent, type RenderedTree } from './tree.js';
import { compareStrings } from './paths.js';

interface DirNode {
  mode: string;
  children: Map<string, DirNode | Buffer>;
}

function sha256(...parts: (string | Uint8Array)[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function hashDir(node: DirNode): Buffer {
  const h = createHash('sha256');
  h.update(`dir ${node.mode}\n`);
  for (const name of [...node.children.keys()].sort(compareStrings)) {
    const child = node.children.get(name)!;
    h.update(name);
    h.update('\0');
    h.update(Buffer.isBuffer(child) ? child : hashDir(child));
  }
  return h.digest();
}

/**
 * File hashes by content and mode, for contents marked as shared (a renderer's shared outputs, a
 * repository's plain files): an output shared by many hosts is hashed once. A host's own output
 * is hashed and forgotten: keeping a hash for each would hold memory for nothing.
 */
const fileHashes = new WeakMap<Uint8Array, Map<number, Buffer>>();

function fileHash(mode: number, content: Uint8Array): Buffer {
  if (!isSharedContent(content)) return sha256(`file ${mode.toString(8)}\n`, content);
  let byMode = fileHashes.get(content);
  if (!byMode) fileHashes.set(content, (byMode = new Map()));
  let h = byMode.get(mode);
  if (!h) byMode.set(mode, (h = sha256(`file ${mode.toString(8)}\n`, content)));
  return h;
}

export function renderHash(tree: RenderedTree): string {
  const root: DirNode = { mode: 'root', children: new Map() };
  const dirAt = (path: string): DirNode => {
    let node = root;
    if (path === '') return node;
    for (const name of path.split('/')) {
      let next = node.children.get(name);
      if (!next || Buffer.isBuffer(next)) {
        next = { mode: '0', children: new Map() };
        node.children.set(name, next);
      }
      node = next;
    }
    return node;
  };
  for (const path of [...tree.keys()].sort(compareStrings)) {
    const entry = tree.get(path)!;
    const slash = path.lastIndexOf('/');
    const parent = dirAt(slash < 0 ? '' : path.slice(0, slash));
    const name = path.slice(slash + 1);
    if (entry.kind === 'dir') dirAt(path).mode = entry.mode.toString(8);
    else if (entry.kind === 'symlink') parent.children.set(name, sha256('symlink\n', entry.target));
    else parent.children.set(name, fileHash(entry.mode, entry.content));
  }
  return 'sha256:' + hashDir(root).toString('hex');
}
