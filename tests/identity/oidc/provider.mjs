// A real OpenID Connect provider for the identity tests: oidc-provider with a client for grantflow, accounts
// with passwords and groups, and a minimal login page (its development pages accept any password).
// Usage: node provider.mjs CONFIG.json   (port, jwks, clients, accounts); prints "listening" when ready.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const accounts = config.accounts;

const provider = new Provider(`http://127.0.0.1:${config.port}`, {
  clients: config.clients,
  jwks: config.jwks,
  scopes: ["openid", "email", "profile", "groups"],
  claims: {
    openid: ["sub"],
    email: ["email"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  conformIdTokenClaims: false, // the scope's claims go into the ID token, where grantflow reads them
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  cookies: { keys: ["grantflow-test-cookie-key"] },
  async findAccount(_ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, name: account.name, preferred_username: id, groups: account.groups };
      },
    };
  },
  async loadExistingGrant(ctx) {
    // First-party client: consent is implied.
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile groups");
    await grant.save();
    return grant;
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

async function formBody(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === "GET") {
    ctx.type = "html";
    ctx.body = `<form method="post"><input name="username"><input name="password" type="password"><button>Sign in</button></form><!-- ${details.uid} -->`;
    return;
  }
  const form = await formBody(ctx.req);
  const account = accounts[form.get("username")];
  if (!account || account.password !== form.get("password")) {
    ctx.status = 403;
    ctx.body = "wrong username or password";
    return;
  }
  ctx.respond = false; // interactionFinished writes the redirect itself
  await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: form.get("username") } }, { mergeWithLastSubmission: false });
});

provider.listen(config.port, "127.0.0.1", () => console.log("listening"));
