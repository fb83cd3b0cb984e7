// Runs the `hibp` npm package (a real third-party Pwned Passwords client) against a
// range API at the base URL given as the first argument. Reads the questions as JSON
// on standard input and prints the client's answers as JSON on standard output.
//
// Input: {"passwords": [...], "ntlm": [[prefix, suffix], ...], "paddingPrefix": "5BAA6"}
import { pwnedPassword, pwnedPasswordRange } from 'hibp';

const baseUrl = process.argv[2];
let input = '';
for await (const chunk of process.stdin) input += chunk;
const questions = JSON.parse(input);

const out = { sha1: {}, sha1Padded: {}, ntlm: {}, ntlmPadded: {} };
for (const password of questions.passwords) {
  out.sha1[password] = await pwnedPassword(password, { baseUrl });
  out.sha1Padded[password] = await pwnedPassword(password, { baseUrl, addPadding: true });
}
for (const [prefix, suffix] of questions.ntlm) {
  const plain = await pwnedPasswordRange(prefix, { baseUrl, mode: 'ntlm' });
  out.ntlm[prefix + suffix] = plain[suffix] || 0;
  const padded = await pwnedPasswordRange(prefix, { baseUrl, mode: 'ntlm', addPadding: true });
  out.ntlmPadded[prefix + suffix] = padded[suffix] || 0;
}
const padded = await pwnedPasswordRange(questions.paddingPrefix, { baseUrl, addPadding: true });
const counts = Object.values(padded);
out.padding = { entries: counts.length, zeros: counts.filter((c) => c === 0).length };
try {
  await pwnedPasswordRange('XYZ12', { baseUrl });
  out.badPrefix = 'accepted';
} catch (e) {
  out.badPrefix = e.message;
}
console.log(JSON.stringify(out));
