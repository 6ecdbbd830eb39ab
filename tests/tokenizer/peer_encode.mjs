// The peer side of the tokenizer conformance tests: gpt-tokenizer's o200k_harmony encoding.
// Usage: node peer_encode.mjs PACKAGE_DIR REQUEST.json RESPONSE.json
//   REQUEST  {"texts_b64": [...]}: raw bytes, decoded as WHATWG UTF-8 (ill-formed parts become U+FFFD, a BOM
//            is kept), then encoded with special-token strings as plain text.
//   RESPONSE {"ids": [[...], ...], "roundtrip_b64": [...]}: the ids, and decode(ids) as UTF-8 bytes.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkg, requestPath, responsePath] = process.argv.slice(2);
const { encode, decode } = await import(pathToFileURL(path.join(pkg, 'esm/encoding/o200k_harmony.js')).href);
const request = JSON.parse(fs.readFileSync(requestPath, 'utf8'));
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const ids = [];
const roundtrip = [];
for (const b64 of request.texts_b64) {
  const text = utf8.decode(Buffer.from(b64, 'base64'));
  const tokens = encode(text, { disallowedSpecial: new Set() });
  ids.push(tokens);
  roundtrip.push(Buffer.from(decode(tokens), 'utf8').toString('base64'));
}
fs.writeFileSync(responsePath, JSON.stringify({ ids, roundtrip_b64: roundtrip }));
