// A small MCP client for a ringfence app, with the official TypeScript SDK: sign in through your
// browser (OAuth 2.1 with PKCE, the client registers itself), then call tools.
//
//   npm install @modelcontextprotocol/sdk@1
//   node typescript_client.mjs https://contacts.example.com/mcp                          # list the tools
//   node typescript_client.mjs https://contacts.example.com/mcp search_contacts '{"query": "ada"}' \
//                                                               add_contact '{"name": "Ada"}'
//
// Sign-in opens your browser (BROWSER names another command); the answer comes back to
// http://127.0.0.1:PORT/callback on this computer (PORT: MCP_CALLBACK_PORT, 8765 if unset). When the
// app asks you to confirm (a deletion), the question is shown here and you answer y or n. Tokens live
// in memory for this run; a real app keeps them (tokens()/saveTokens()) so the user signs in once.
//
// The 1.x SDK cannot add scopes later (its step-up only refreshes: typescript-sdk#2255), so keep the
// further access the consent page offers ticked if you want to use the app's write tools.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const [url, ...calls] = process.argv.slice(2);
if (!url || calls.length % 2) {
  console.error('usage: node typescript_client.mjs MCP_URL [TOOL JSON_ARGUMENTS]...');
  process.exit(2);
}
const port = Number(process.env.MCP_CALLBACK_PORT ?? 8765);
const redirectUrl = `http://127.0.0.1:${port}/callback`;

async function ask(question) {
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await terminal.question(question);
  } finally {
    terminal.close();
  }
}

function openBrowser(address) {
  console.error(`Sign in at: ${address}`);
  const command = process.env.BROWSER
    ?? { darwin: 'open', win32: 'explorer' }[process.platform] ?? 'xdg-open';
  spawn(command, [address], { stdio: 'ignore', detached: true }).on('error', () => {}).unref();
}

// The query the authorization server sends to redirectUrl: { code, state, iss } or { error }.
function waitForCallback() {
  return new Promise((resolve) => {
    const server = createServer((request, response) => {
      const answer = Object.fromEntries(new URL(request.url, redirectUrl).searchParams);
      response.end('Signed in. You can close this tab and go back to the app.');
      server.close();
      resolve(answer);
    }).listen(port, '127.0.0.1');
  });
}

const kept = {};
const authProvider = {
  redirectUrl,
  clientMetadata: {
    client_name: 'My MCP client',
    redirect_uris: [redirectUrl],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  clientInformation: () => kept.client,
  saveClientInformation: (client) => { kept.client = client; },
  tokens: () => kept.tokens,
  saveTokens: (tokens) => { kept.tokens = tokens; },
  redirectToAuthorization: (authorizationUrl) => {
    kept.callback = waitForCallback();
    openBrowser(authorizationUrl.href);
  },
  saveCodeVerifier: (verifier) => { kept.verifier = verifier; },
  codeVerifier: () => kept.verifier,
};

const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider });
const client = new Client({ name: 'my-mcp-client', version: '1.0.0' }, { capabilities: { elicitation: {} } });
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  console.error(request.params.message);
  const said = await ask('Confirm? [y/N] ');
  return { action: 'accept', content: { confirm: said.trim().toLowerCase() === 'y' } };
});

// A 401 sends the user to sign in (UnauthorizedError); with the code from the callback, try again.
async function signedIn(call) {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !kept.callback) throw error;
    const answer = await kept.callback;
    kept.callback = undefined;
    if (answer.error) throw new Error(`Sign-in refused: ${answer.error} ${answer.error_description ?? ''}`);
    await transport.finishAuth(answer.code);
    return await call();
  }
}

await signedIn(() => client.connect(transport));
if (calls.length === 0) {
  for (const tool of (await signedIn(() => client.listTools())).tools) {
    console.log(JSON.stringify({ tool: tool.name, description: tool.description }));
  }
}
for (let i = 0; i < calls.length; i += 2) {
  const [name, args] = [calls[i], JSON.parse(calls[i + 1])];
  const result = await signedIn(() => client.callTool({ name, arguments: args }));
  console.log(JSON.stringify({ tool: name, is_error: result.isError ?? false, structured: result.structuredContent ?? null,
    text: result.content.filter((part) => part.type === 'text').map((part) => part.text) }));
}
await client.close();
