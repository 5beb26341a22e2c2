// An OpenID provider nobody here wrote: `oidc-provider` (panva), on loopback, for the upstream sign-in
// tests (tests/login/). Its development sign-in page accepts any login and password; the login names
// an account of ACCOUNTS below, or any other name as an account with an unverified e-mail address.
//
//   node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI [ACCESS_TOKEN_SECONDS]
//
// Besides sign-in, it lends the client refresh tokens (offline_access), revokes them (RFC 7009) and
// answers its userinfo endpoint with an access token: an API the tests' tools call as the person.
//
// Prints "ready" on a line once it listens.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri, accessTokenSeconds = '600'] = process.argv.slice(2);

// login -> [subject, e-mail, verified]: the subject is not the e-mail, as at real providers.
const ACCOUNTS = {
  alice: ['248289761001', 'alice@example.com', true],
  bob: ['248289761002', 'bob@example.com', true],
  mallory: ['248289761003', 'mallory@elsewhere.test', true],
  eve: ['248289761004', 'eve@example.com', false],
};

function account(login) {
  const [sub, email, verified] = ACCOUNTS[login] ?? [`unknown-${login}`, `${login}@example.com`, false];
  return { sub, email, email_verified: verified, preferred_username: login };
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
  // The development login sends the login as the account id; the subject is the account's own.
  findAccount: async (ctx, id) => {
    const login = Object.keys(ACCOUNTS).find((name) => ACCOUNTS[name][0] === id) ?? id;
    const claims = account(login);
    return { accountId: claims.sub, claims: async () => claims };
  },
  scopes: ['openid', 'offline_access', 'notes:read'],
  features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['ringfence-tests-only'] },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: Number(accessTokenSeconds), IdToken: 600, AuthorizationCode: 60 },
});

// The development login gives the typed login as the account id: map it to the account's subject.
const { interactionFinished } = provider;
provider.interactionFinished = async (req, res, result, options) => {
  if (result?.login?.accountId && ACCOUNTS[result.login.accountId]) {
    result.login.accountId = ACCOUNTS[result.login.accountId][0];
  }
  return interactionFinished.call(provider, req, res, result, options);
};

provider.listen(Number(port), '127.0.0.1', () => console.log('ready'));
