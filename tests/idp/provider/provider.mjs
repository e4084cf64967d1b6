// A certified OpenID Provider (oidc-provider) on 127.0.0.1 for Weir's openid-connect tests.
//
//   node provider.mjs [--port N] [--issuer-path /realms/NAME] [--clients JSON]
//                     [--alg ES256|RS256] [--id-token-ttl S] [--access-token-ttl S]
//                     [--refresh-token-ttl S] [--session-ttl S] [--rotate-refresh-tokens]
//                     [--exit-on-stdin-close] [--host ADDR] [--public-origin URL]
//                     [--state-file PATH]
//
// --host (default 127.0.0.1) is the listening address; --public-origin (default
// http://127.0.0.1:<port>) is the origin in the issuer, for a provider reached by a service
// name (the kind suite runs it in a cluster as http://idp.weir-auth.svc.cluster.local:3000).
//
// --state-file keeps the signing keys and cookie keys in a JSON file: read when it exists,
// written when they are made or rotated. A provider restarted with the same file (and port
// and clients) is the same provider to its relying parties: tokens it issued before still
// verify against its JWKS. Grants, sessions and refresh tokens live in memory and are lost.
//
// Port 0 (the default, or $WEIR_IDP_PORT) lets the kernel pick one. When listening, one JSON
// line goes to stdout: {"ready":true,"issuer":…,"port":…,"discovery":…,"jwks_uri":…,
// "admin":…,"signing_kids":[…]}. Request logs go to stderr.
//
// Beside the provider, on the same loopback server and outside the issuer path:
//   POST /weir-admin/rotate-keys[?retire=1]  adds a new signing key per algorithm and makes it
//                                            current; with retire=1 older keys leave the JWKS.
//   POST /weir-admin/tamper-next-id-token    body {"set":{claims},"remove":[names],
//        "header":{fields},"sign":"current-key"|"none"|"unknown-key"}: the next token
//        response's ID token is rewritten so (a provider gone wrong, or an attacker in the
//        middle); one-shot.
// Development interactions (login and consent forms) accept any username and password.

import {
  createPrivateKey, generateKeyPairSync, randomBytes, sign,
} from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';
// Rotation replaces the provider's keystore in place, so sessions, grants and refresh tokens
// survive it. oidc-provider has no public API for that; its package has no "exports" map,
// so these internal modules are importable and pinned together with the version.
import initializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';

const ALGS = ['ES256', 'RS256'];
const ADMIN_PREFIX = '/weir-admin/';

function fail(message) {
  process.stderr.write(`weir-idp: ${message}\n`);
  process.exit(2);
}

function parseSeconds(name, text, fallback) {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) fail(`--${name} must be a positive whole number of seconds, got ${text}`);
  return n;
}

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.WEIR_IDP_PORT ?? '0' },
    'issuer-path': { type: 'string', default: '' },
    clients: { type: 'string' },
    alg: { type: 'string', default: 'ES256' },
    'id-token-ttl': { type: 'string' },
    'access-token-ttl': { type: 'string' },
    'refresh-token-ttl': { type: 'string' },
    'session-ttl': { type: 'string' },
    'rotate-refresh-tokens': { type: 'boolean', default: false },
    'exit-on-stdin-close': { type: 'boolean', default: false },
    host: { type: 'string', default: '127.0.0.1' },
    'public-origin': { type: 'string' },
    'state-file': { type: 'string' },
  },
  strict: true,
});

const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, got ${args.port}`);
const issuerPath = args['issuer-path'].replace(/\/+$/, '');
if (issuerPath && !/^\/[A-Za-z0-9._~\-/]+$/.test(issuerPath)) {
  fail(`--issuer-path must look like /realms/NAME, got ${args['issuer-path']}`);
}
if (!ALGS.includes(args.alg)) fail(`--alg must be one of ${ALGS.join(', ')}, got ${args.alg}`);

const ttl = {
  idToken: parseSeconds('id-token-ttl', args['id-token-ttl'], 300),
  accessToken: parseSeconds('access-token-ttl', args['access-token-ttl'], 300),
  refreshToken: parseSeconds('refresh-token-ttl', args['refresh-token-ttl'], 3600),
  session: parseSeconds('session-ttl', args['session-ttl'], 3600),
};

function clientsFromArgs() {
  let list = [{
    client_id: 'weir-rp',
    client_secret: 'weir-rp-secret',
    redirect_uris: ['http://127.0.0.1/callback'],
  }];
  if (args.clients !== undefined) {
    try {
      list = JSON.parse(args.clients);
    } catch (err) {
      fail(`--clients is not JSON: ${err.message}`);
    }
    if (!Array.isArray(list) || list.length === 0) fail('--clients must be a non-empty JSON array of client objects');
  }
  // Confidential web clients doing code flow with refresh tokens; a test may override any of
  // these (or add other client metadata), and oidc-provider validates the result.
  return list.map((client) => ({
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: args.alg,
    post_logout_redirect_uris: [],
    ...client,
  }));
}

// Key ids carry the algorithm, a generation and a per-process tag, so a test can tell a
// rotated key from the first one and two providers never share a kid.
const processTag = randomBytes(3).toString('hex');
let generation = 0;

function newSigningKeys({ countGeneration = true } = {}) {
  if (countGeneration) generation += 1;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return [
    { ...ec, use: 'sig', alg: 'ES256', kid: `es256-${generation}-${processTag}` },
    { ...rsa, use: 'sig', alg: 'RS256', kid: `rs256-${generation}-${processTag}` },
  ];
}

const stateFile = args['state-file'];

function loadState() {
  if (stateFile === undefined || !existsSync(stateFile)) {
    return { keys: newSigningKeys(), cookieKeys: [randomBytes(32).toString('hex')] };
  }
  try {
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    if (!Array.isArray(state.keys) || !Array.isArray(state.cookieKeys)) throw new Error('keys or cookieKeys missing');
    return state;
  } catch (err) {
    return fail(`--state-file ${stateFile} is unusable: ${err.message}`);
  }
}

// Written aside and renamed, so a provider killed mid-write leaves the old state whole.
function saveState() {
  if (stateFile === undefined) return;
  writeFileSync(`${stateFile}.partial`, JSON.stringify({ keys, cookieKeys }));
  renameSync(`${stateFile}.partial`, stateFile);
}

const state = loadState();
let { keys } = state;
const { cookieKeys } = state;
saveState();

const server = http.createServer();
server.requestTimeout = 10_000;
server.headersTimeout = 10_000;
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, args.host, resolve);
}).catch((err) => fail(`cannot listen on ${args.host}:${port}: ${err.message}`));

const { port: boundPort } = server.address();
const origin = (args['public-origin'] ?? `http://127.0.0.1:${boundPort}`).replace(/\/+$/, '');
if (!/^https?:\/\/[^/?#]+$/.test(origin)) fail(`--public-origin must be scheme://host[:port], got ${origin}`);
const issuer = `${origin}${issuerPath}`;

let provider;
try {
  provider = new Provider(issuer, {
    clients: clientsFromArgs(),
    jwks: { keys },
    cookies: { keys: cookieKeys },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub, name: sub, preferred_username: sub, email: `${sub}@example.test`, email_verified: true,
          };
        },
      };
    },
    // Like Keycloak, the ID token carries the claims of the requested scopes (email,
    // profile), so the token a plugin forwards can feed claim-based checks downstream.
    conformIdTokenClaims: false,
    // Expiry is exact: tests with one-second lifetimes must see tokens expire (the default
    // tolerates 15 s of skew, which a single machine does not have).
    clockTolerance: 0,
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
      // The provider accepts the plugin's token requests regardless of origin; no CORS needed.
    },
    responseTypes: ['code'],
    pkce: { methods: ['S256'], required: () => true },
    // Like Keycloak, a client allowed the refresh_token grant gets a refresh token on every
    // code exchange, not only with offline_access (which OIDC ties to prompt=consent).
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    // Off by default, as in Keycloak: a refresh token stays valid until it expires. With
    // --rotate-refresh-tokens every refresh returns a new one and consumes the old.
    rotateRefreshToken: args['rotate-refresh-tokens'],
    ttl: {
      AccessToken: ttl.accessToken,
      AuthorizationCode: 60,
      IdToken: ttl.idToken,
      RefreshToken: ttl.refreshToken,
      Interaction: 600,
      Session: ttl.session,
      Grant: ttl.refreshToken,
    },
    enabledJWA: { idTokenSigningAlgValues: ALGS },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
} catch (err) {
  fail(`oidc-provider rejected the configuration: ${err.message}`);
}

function rotateKeys(retire) {
  keys = [...newSigningKeys(), ...(retire ? [] : keys)];
  initializeKeystore.call(provider, { keys });
  saveState();
  return {
    signing_kids: keys.slice(0, ALGS.length).map((k) => k.kid),
    jwks_kids: keys.map((k) => k.kid),
  };
}

// The rewrite armed by /weir-admin/tamper-next-id-token, applied to one token response.
let pendingTamper = null;

const SIGNINGS = ['current-key', 'none', 'unknown-key'];

function b64json(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function tamperIdToken(idToken, tamper) {
  const [rawHeader, rawPayload] = idToken.split('.');
  const header = { ...JSON.parse(Buffer.from(rawHeader, 'base64url')), ...tamper.header };
  const claims = { ...JSON.parse(Buffer.from(rawPayload, 'base64url')), ...tamper.set };
  for (const name of tamper.remove) delete claims[name];
  if (tamper.sign === 'none') {
    return `${b64json({ ...header, alg: 'none' })}.${b64json(claims)}.`;
  }
  const { alg } = JSON.parse(Buffer.from(rawHeader, 'base64url'));
  let jwk = keys.find((k) => k.alg === alg);
  if (tamper.sign === 'unknown-key') {
    [jwk] = newSigningKeys({ countGeneration: false }).filter((k) => k.alg === alg);
    jwk = { ...jwk, kid: `unknown-${randomBytes(4).toString('hex')}` };
    header.kid = jwk.kid;
  }
  const input = `${b64json(header)}.${b64json(claims)}`;
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const signature = sign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${signature.toString('base64url')}`;
}

function parseTamper(text) {
  const body = JSON.parse(text || '{}');
  const tamper = {
    set: body.set ?? {}, remove: body.remove ?? [], header: body.header ?? {}, sign: body.sign ?? 'current-key',
  };
  if (typeof tamper.set !== 'object' || typeof tamper.header !== 'object' || !Array.isArray(tamper.remove)) {
    throw new Error('set and header must be objects, remove an array of claim names');
  }
  if (!SIGNINGS.includes(tamper.sign)) throw new Error(`sign must be one of ${SIGNINGS.join(', ')}`);
  return tamper;
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function handleAdmin(req, res, url, body) {
  if (url.pathname === `${ADMIN_PREFIX}rotate-keys` && req.method === 'POST') {
    sendJson(res, 200, rotateKeys(url.searchParams.get('retire') === '1'));
  } else if (url.pathname === `${ADMIN_PREFIX}tamper-next-id-token` && req.method === 'POST') {
    try {
      pendingTamper = parseTamper(body);
      sendJson(res, 200, { armed: pendingTamper });
    } catch (err) {
      sendJson(res, 400, { error: err.message });
    }
  } else {
    sendJson(res, 404, { error: `no admin route ${req.method} ${url.pathname}` });
  }
}

// Before callback(): Koa composes the middleware list when the callback is made.
provider.use(async (ctx, next) => {
  await next();
  if (pendingTamper && ctx.method === 'POST' && ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: tamperIdToken(ctx.body.id_token, pendingTamper) };
    pendingTamper = null;
  }
});

const callback = provider.callback();
server.on('request', (req, res) => {
  const started = Date.now();
  const target = req.url;
  res.on('finish', () => {
    process.stderr.write(`${new Date().toISOString()} ${req.method} ${target} -> ${res.statusCode} (${Date.now() - started} ms)\n`);
  });
  const url = new URL(req.url, origin);
  if (url.pathname.startsWith(ADMIN_PREFIX)) {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => handleAdmin(req, res, url, body));
    return;
  }
  if (issuerPath) {
    if (url.pathname !== issuerPath && !url.pathname.startsWith(`${issuerPath}/`)) {
      sendJson(res, 404, { error: `not under the issuer path ${issuerPath}` });
      return;
    }
    // oidc-provider derives its mount path from originalUrl, as under Express.
    req.originalUrl = req.url;
    req.url = req.url.slice(issuerPath.length) || '/';
  }
  callback(req, res);
});

provider.on('server_error', (ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// A test process that dies without killing its provider closes this pipe: no orphan keeps
// listening.
if (args['exit-on-stdin-close']) {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({
  ready: true,
  issuer,
  port: boundPort,
  discovery: `${issuer}/.well-known/openid-configuration`,
  jwks_uri: `${issuer}/jwks`,
  admin: `${origin}${ADMIN_PREFIX}`,
  signing_kids: keys.map((k) => k.kid),
})}\n`);
