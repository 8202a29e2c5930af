// Node.js clients verifying signet tokens, run by ../node_test.go, which
// starts the issuers and writes the fixture file named by
// SIGNET_INTEROP_FIXTURES (and trusts the test CAs via NODE_EXTRA_CA_CERTS).
// For each algorithm and client: the valid token passes, the token of a
// withdrawn key and every forgery fail, except the gaps listed (checked,
// so that docs/INTEROP.md stays true); a revoked token passes, because a
// JWT library cannot see signet's revocation list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import jsonwebtoken from 'jsonwebtoken';
import jwksRsa from 'jwks-rsa';

const fixtures = JSON.parse(readFileSync(process.env.SIGNET_INTEROP_FIXTURES, 'utf8'));

async function jwksURI(issuer) {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  assert.equal(res.status, 200, 'discovery answers 200');
  const doc = await res.json();
  assert.equal(doc.issuer, issuer);
  return doc.jwks_uri;
}

// Each client: name, how to build a verifier (async (fixture) => async
// (token) => void, throwing when refused), the algorithms it does not
// support, and the forgeries it is known to accept.
const clients = [
  {
    name: 'jose jwtVerify + createRemoteJWKSet',
    async make(f) {
      const jwks = createRemoteJWKSet(new URL(await jwksURI(f.issuer)));
      return async (token) => {
        await jwtVerify(token, jwks, { issuer: f.issuer, audience: f.audience, typ: 'at+jwt' });
      };
    },
    unsupported: {},
    gaps: {},
  },
  {
    name: 'jsonwebtoken + jwks-rsa',
    async make(f) {
      const client = jwksRsa({ jwksUri: await jwksURI(f.issuer) });
      const getKey = (header, cb) => {
        client.getSigningKey(header.kid, (err, key) => cb(err, key && key.getPublicKey()));
      };
      return (token) => new Promise((resolve, reject) => {
        jsonwebtoken.verify(token, getKey, { algorithms: ['ES256', 'RS256'], issuer: f.issuer, audience: f.audience },
          (err) => (err ? reject(err) : resolve()));
      });
    },
    unsupported: { EdDSA: 'jsonwebtoken has no EdDSA' },
    gaps: { 'unknown crit (genuine signature)': 'jsonwebtoken does not check crit' },
  },
];

async function refused(verify, token) {
  try {
    await verify(token);
    return null;
  } catch (err) {
    return err;
  }
}

for (const f of fixtures) {
  for (const c of clients) {
    test(`${c.name} ${f.alg}`, async (t) => {
      const verify = await c.make(f);
      if (c.unsupported[f.alg]) {
        const err = await refused(verify, f.valid);
        assert.ok(err, `valid ${f.alg} token accepted, but ${c.unsupported[f.alg]}`);
        t.diagnostic(`valid ${f.alg} token refused as expected (${c.unsupported[f.alg]}): ${err.message}`);
        return;
      }
      assert.equal(await refused(verify, f.valid), null, 'the valid token passes');
      assert.ok(await refused(verify, f.withdrawn_key), 'the token of the withdrawn key is refused');
      assert.equal(await refused(verify, f.revoked_token), null,
        'a revoked token passes: a JWT library cannot see the revocation list (the docs say so)');
      for (const fg of f.forged) {
        const err = await refused(verify, fg.token);
        if (c.gaps[fg.name]) {
          assert.equal(err, null, `forgery "${fg.name}" refused, but the docs list it as accepted (${c.gaps[fg.name]}): update them`);
          t.diagnostic(`forgery "${fg.name}" accepted, a known gap: ${c.gaps[fg.name]}`);
        } else {
          assert.ok(err, `forgery "${fg.name}" accepted`);
        }
      }
    });
  }
}
