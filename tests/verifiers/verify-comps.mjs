// Runs the user guide's Node.js `verify` snippet, exactly as published, on a captured delivery.
// Usage: node verify-comps.mjs <case.json>  where case.json is
//   {"body_base64": "...", "signature": "<X-Comps-Signature>", "secret": "whsec_..."}
// Prints "valid" or "invalid".
import crypto from 'crypto'
import { readFileSync } from 'fs'

function verify(rawBody, signatureHeader, secret) {
  const expected = crypto
    .createHmac('sha256', secret)
    .update(rawBody)
    .digest('hex')
  return crypto.timingSafeEqual(
    Buffer.from(signatureHeader, 'hex'),
    Buffer.from(expected, 'hex')
  )
}

const testCase = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const rawBody = Buffer.from(testCase.body_base64, 'base64')
console.log(verify(rawBody, testCase.signature, testCase.secret) ? 'valid' : 'invalid')
