// The TypeScript SDK (@modelcontextprotocol/sdk 1.x) as an unmodified app would use it: its
// StreamableHTTPClientTransport with an OAuthClientProvider, then four tool calls in order.
//
// Usage: node link_and_call.mjs MCP_URL REDIRECT_URL
//
// The "browser" is the test that runs this script (tests/clients/node_client.py): each line on stdout
// is one JSON object. {"authorize": URL} asks it to sign in and consent at URL; it answers with one
// line on stdin, {"code": ..., "state": ...}, the query the redirect URI would have received.
// {"elicitation": MESSAGE} is what the user was asked (and accepted); {"step", "result" | "error"}
// is the outcome of each call. Each step runs even when an earlier one failed.
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const [mcpUrl, redirectUrl] = process.argv.slice(2);
const say = (value) => process.stdout.write(JSON.stringify(value) + '\n');
const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// OAuthClientProvider, kept in memory: a public client registered dynamically (RFC 7591).
const stored = {};
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return {
      client_name: 'ringfence tests (TypeScript SDK)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  clientInformation: () => stored.client,
  saveClientInformation: (client) => { stored.client = client; },
  tokens: () => stored.tokens,
  saveTokens: (tokens) => { stored.tokens = tokens; say({ tokens: { scope: tokens.scope ?? null } }); },
  redirectToAuthorization: (url) => { stored.pending = url; say({ authorize: url.href }); },
  saveCodeVerifier: (verifier) => { stored.verifier = verifier; },
  codeVerifier: () => stored.verifier,
};

const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
const client = new Client({ name: 'ringfence-tests', version: '1.0.0' }, { capabilities: { elicitation: {} } });
// MCP elicitation: the user is shown the server's question and accepts (ringfence's Confirm form).
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  say({ elicitation: request.params.message });
  return { action: 'accept', content: { confirm: true } };
});

// The SDK answers a 401 by sending the user to authorize (UnauthorizedError); after the redirect the
// app hands it the code (finishAuth) and tries again, as the SDK's own examples do.
async function authorized(call) {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !stored.pending) throw error;
    stored.pending = undefined;
    const { value } = await answers.next();
    const { code } = JSON.parse(value);
    await transport.finishAuth(code);
    return await call();
  }
}

async function step(name, call) {
  try {
    say({ step: name, result: await authorized(call) });
  } catch (error) {
    say({ step: name, error: String(error?.message ?? error) });
  }
}

await authorized(() => client.connect(transport));
await step('list', () => client.listTools());
await step('search', () => client.callTool({ name: 'search_contacts', arguments: { query: 'ada' } }));
let added;
await step('add', async () => (added = await client.callTool({
  name: 'add_contact', arguments: { name: 'Ada from TypeScript', email: 'ada@example.org' } })));
const id = added?.structuredContent?.id ?? 999999;
await step('delete', () => client.callTool({ name: 'delete_contact', arguments: { contact_id: id } }));
await step('after', () => client.callTool({ name: 'search_contacts', arguments: { query: 'ada from typescript' } }));
await client.close();
process.exit(0);
