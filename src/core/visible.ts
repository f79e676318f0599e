/**
 * Text from a repository (a file name, a principal, a line of a template: maybe a fork's) on a
 * terminal: control characters (C0, DEL, C1) and the line and paragraph separators are shown as
 * \uNNNN, so an escape sequence in a name can neither recolour, move the cursor nor erase what
 * dotfleet printed before it (a trust change, say). \uNNNN is JSON's own escape: inside a JSON
 * string it is still valid JSON with the same value. `keep` lists characters that stay (a patch
 * keeps its tabs; a message keeps its line breaks).
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

export function visible(s: string, keep = ''): string {
  return s.replace(CONTROL, (c) => {
    if (keep.includes(c)) return c;
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
