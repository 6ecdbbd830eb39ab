// The peer side of the harmony conformance tests: gpt-tokenizer's harmony chat formatter (gpt-oss-20b).
// Usage: node peer_chat.mjs PACKAGE_DIR REQUEST.json RESPONSE.json
//   REQUEST  {"conversations": [[message, ...], ...]}, each message in the peer's form: role, content, and
//            optionally name, channel, recipient, recipientPlacement, constraint, terminator.
//   RESPONSE {"ids": [[...], ...]}: each conversation rendered for completion (ending in <|start|>assistant),
//            message text encoded with special-token strings as plain text.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkg, requestPath, responsePath] = process.argv.slice(2);
const { encodeChat } = await import(pathToFileURL(path.join(pkg, 'esm/model/gpt-oss-20b.js')).href);
const request = JSON.parse(fs.readFileSync(requestPath, 'utf8'));
const ids = request.conversations.map((messages) =>
  encodeChat(messages, undefined, { disallowedSpecial: new Set() }),
);
fs.writeFileSync(responsePath, JSON.stringify({ ids }));
