// End to end in real browser pages: `conclave serve` and `conclave web` clients (the
// release binary), Debian's Chromium driven by playwright-core. Two people register (one
// with an invitation code, one with an OpenID Connect ID token bound to the AS's nonce), become
// contacts (Bob answers with the keyboard alone), make a group and talk live both ways; a second device of Alice joins and reads
// from then on; the verification codes are compared; Alice removes Bob, whose page shows it
// and no longer lets him write. Any console error on a page fails the run. Screenshots of
// the main screens go to docs/web/.
//
//   node e2e/run.mjs            (from crates/cli/web; scripts/web-e2e builds first)
//
// Environment: CONCLAVE_BIN (default: target/release/conclave of the workspace),
// CHROMIUM (default /usr/bin/chromium), SCREENSHOTS (default docs/web of the workspace).
import { spawn, execFileSync } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const workspace = resolve(here, "../../../..");
const bin = process.env.CONCLAVE_BIN ?? join(workspace, "target/release/conclave");
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const shots = process.env.SCREENSHOTS ?? join(workspace, "docs/web");
const timeout = 60_000;

const tmp = mkdtempSync(join(tmpdir(), "conclave-e2e-"));
const children = [];
const consoleErrors = [];
let step = 0;

function log(text) {
  step += 1;
  console.log(`${step}. ${text}`);
}

/** Starts `conclave args…` and resolves with the JSON of its first line of output. */
function start(args) {
  return new Promise((resolveStart, reject) => {
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`conclave ${args.join(" ")} exited with ${code}`)));
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      try {
        resolveStart(JSON.parse(line));
      } catch (e) {
        reject(new Error(`conclave ${args[0]}: ${line}: ${e}`));
      }
    });
  });
}

function invite(data, user) {
  const out = execFileSync(bin, ["--json", "invite", "--data", data, user], { encoding: "utf8" });
  return JSON.parse(out).code;
}

async function webClient(name, auth, ds) {
  const v = await start(["--json", "--profile", join(tmp, name), "web", "--no-open", "--as", auth, "--ds", ds]);
  return v.url;
}

async function openPage(browser, name, url, viewport = { width: 1100, height: 760 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${name}: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${name}: ${e.message}`));
  await page.goto(url);
  return page;
}

async function register(page, code, user) {
  await page.getByRole("heading", { name: "Register this device" }).waitFor();
  await page.getByLabel("Invitation code", { exact: true }).fill(code);
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByRole("heading", { name: `Hello, ${user}` }).waitFor();
}

/** A test OpenID Connect issuer: an Ed25519 key, its JWKS, and the AS's configuration file. */
function oidcIssuer(dir) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const issuer = "https://id.example.org";
  const jwks = join(dir, "jwks.json");
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid: "k1", alg: "EdDSA", use: "sig" }] }));
  const config = join(dir, "oidc.json");
  writeFileSync(config, JSON.stringify({ issuers: [{ issuer, audiences: ["conclave"], jwks_file: jwks, allowed_domains: ["example.org"] }] }));
  const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
  return {
    config,
    /** An ID token for `email` carrying `nonce`, as the identity provider would issue it. */
    token(email, nonce) {
      const now = Math.floor(Date.now() / 1000);
      const input = `${b64({ alg: "EdDSA", typ: "JWT", kid: "k1" })}.${b64({ iss: issuer, aud: "conclave", sub: email, email, email_verified: true, iat: now, exp: now + 600, nonce })}`;
      return `${input}.${sign(null, Buffer.from(input), privateKey).toString("base64url")}`;
    },
  };
}

/** Registers with OpenID Connect: the page asks the AS for a nonce, the token carries it. */
async function registerOidc(page, issuer, user) {
  await page.getByRole("heading", { name: "Register this device" }).waitFor();
  await page.getByLabel("an OIDC ID token").check();
  await page.getByRole("button", { name: "Get a nonce" }).click();
  const nonce = (await page.locator("#reg-nonce-value").textContent()).trim();
  await page.getByLabel("ID token", { exact: true }).fill(issuer.token(user, nonce));
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByRole("heading", { name: `Hello, ${user}` }).waitFor();
}

async function shot(page, file) {
  await page.screenshot({ path: join(shots, file) });
}

async function send(page, text) {
  // Keyboard only: type and press Enter.
  const box = page.getByLabel("Message", { exact: true });
  await box.click();
  await box.fill(text);
  await box.press("Enter");
}

/** Moves the focus with the Tab key alone until it is on a control whose text starts with `text`. */
async function tabTo(page, text) {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const e = document.activeElement;
      return e ? (e.getAttribute("aria-label") ?? e.textContent ?? "").trim() : "";
    });
    if (focused.startsWith(text)) return;
  }
  throw new Error(`the Tab key never reaches "${text}"`);
}

async function code(page) {
  return (await page.getByTestId("verification-code").textContent())?.trim();
}

async function main() {
  mkdirSync(shots, { recursive: true });
  const data = join(tmp, "servers");
  const issuer = oidcIssuer(tmp);
  const servers = await start([
    "serve", "--json", "--as-listen", "127.0.0.1:0", "--ds-listen", "127.0.0.1:0", "--data", data, "--oidc", issuer.config,
  ]);
  const auth = servers.auth_url;
  const ds = servers.delivery_urls[0];
  log(`servers: AS ${auth}, DS ${ds}`);

  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  try {
    const alice = await openPage(browser, "alice", await webClient("alice", auth, ds));
    const bob = await openPage(browser, "bob", await webClient("bob", auth, ds));

    await shot(alice, "register.png");
    await register(alice, invite(data, "alice@example.org"), "alice@example.org");
    await registerOidc(bob, issuer, "bob@example.org");
    log("Alice registered her device in her page with an invitation code, Bob his with an OIDC ID token");

    await alice.getByRole("link", { name: "Contacts" }).click();
    await alice.getByLabel("Ask someone to be your contact").fill("bob@example.org");
    await alice.getByRole("button", { name: "Ask" }).click();
    await alice.getByText("asked — waiting for their answer").waitFor();
    // Bob answers with the keyboard alone: Tab to Contacts, Enter, Tab to Accept, Enter.
    await bob.getByRole("link", { name: /Contacts/ }).getByLabel("1 requests").waitFor();
    await tabTo(bob, "Contacts");
    await bob.keyboard.press("Enter");
    await bob.getByRole("button", { name: "Accept alice@example.org" }).waitFor();
    await tabTo(bob, "Accept alice@example.org");
    await bob.keyboard.press("Enter");
    await alice.locator(".contacts li", { hasText: "bob@example.org" }).getByText("contact", { exact: true }).waitFor();
    await shot(bob, "contacts.png");
    log("Alice asked Bob to be a contact; Bob accepted, with the keyboard alone");

    await alice.getByRole("button", { name: "New group" }).click();
    await alice.getByLabel("Add a person (all their devices)").fill("bob@example.org");
    await alice.getByRole("button", { name: "Add", exact: true }).click();
    await alice.locator(".members strong", { hasText: "bob@example.org" }).waitFor();
    log("Alice created a group and added Bob");

    await bob.getByRole("link", { name: /alice@example\.org/ }).click();
    await send(alice, "Hello Bob, this is Alice.");
    await bob.locator(".msg .body", { hasText: "Hello Bob, this is Alice." }).waitFor();
    await send(bob, "Hi Alice! Bob here.");
    await alice.locator(".msg .body", { hasText: "Hi Alice! Bob here." }).waitFor();
    await bob.locator(".msg", { hasText: "Hi Alice! Bob here." }).getByText("✓ sent").waitFor();
    log("messages appear live in the other page, both ways");
    await shot(bob, "conversation.png");

    await alice.getByRole("button", { name: "Verify" }).click();
    await bob.getByRole("button", { name: "Verify" }).click();
    let a = "";
    let b = "";
    for (let i = 0; i < 50; i++) {
      a = await code(alice);
      b = await code(bob);
      if (a && a === b) break;
      await alice.waitForTimeout(200);
    }
    if (!a || a !== b) throw new Error(`verification codes differ: ${a} / ${b}`);
    await alice.getByRole("img", { name: "QR image of the verification code" }).waitFor();
    await shot(alice, "verify.png");
    log(`both pages show the same verification code: ${a}`);
    await alice.getByRole("button", { name: "Verify" }).click();
    await bob.getByRole("button", { name: "Verify" }).click();

    // Alice's second device: registered in its own page; her first device adds it.
    const alice2 = await openPage(browser, "alice2", await webClient("alice2", auth, ds));
    await register(alice2, invite(data, "alice@example.org"), "alice@example.org");
    await bob.getByRole("alert").filter({ hasText: "alice@example.org has a new device" }).waitFor();
    await shot(bob, "device-alert.png");
    log("Bob's page alerts him that Alice has a new device");
    await alice2.getByRole("link", { name: /bob@example\.org/ }).click();
    await alice.getByRole("button", { name: "Members" }).click();
    await alice.locator(".devices li", { hasText: "(this device)" }).waitFor();
    await alice.locator(".members > li", { hasText: "alice@example.org (you)" }).locator(".devices li").nth(1).waitFor();
    await shot(alice, "members.png");
    await send(bob, "Welcome, Alice's second device.");
    await alice2.locator(".msg .body", { hasText: "Welcome, Alice's second device." }).waitFor();
    if ((await alice2.locator(".msg .body", { hasText: "Hello Bob, this is Alice." }).count()) !== 0) {
      throw new Error("the second device shows a message from before it joined");
    }
    await alice2.getByRole("link", { name: "Devices" }).click();
    await alice2.getByText("(this device)").waitFor();
    await shot(alice2, "devices.png");
    log("Alice's second device joined the group and reads from then on (not before)");

    await alice.getByRole("button", { name: "Remove bob@example.org" }).click();
    await bob.getByText("You are no longer a member of this group").waitFor();
    if ((await bob.getByLabel("Message", { exact: true }).count()) !== 0) throw new Error("Bob can still write after removal");
    await shot(bob, "removed.png");
    log("Alice removed Bob: his page shows he left and offers no input");

    await alice.setViewportSize({ width: 390, height: 760 });
    await alice.getByRole("link", { name: "Back to conversations" }).click();
    await alice.getByRole("button", { name: "New group" }).waitFor();
    await shot(alice, "narrow-list.png");
    await alice.locator(".groups a").first().click();
    await alice.locator(".msg .body", { hasText: "Welcome, Alice's second device." }).waitFor();
    await shot(alice, "narrow-conversation.png");
    log("a narrow screen shows one pane at a time");

    for (const p of [alice, bob, alice2]) await p.close();
  } finally {
    await browser.close();
  }
  if (consoleErrors.length) throw new Error(`console errors:\n${consoleErrors.join("\n")}`);
}

let failed = false;
try {
  await main();
  console.log(`${step} passed, 0 failed`);
} catch (e) {
  failed = true;
  console.error(`web e2e failed at step ${step + 1}: ${e?.stack ?? e}`);
  if (consoleErrors.length) console.error(consoleErrors.join("\n"));
} finally {
  for (const c of children) {
    c.removeAllListeners("exit");
    c.kill("SIGINT");
  }
  await new Promise((r) => setTimeout(r, 500));
  for (const c of children) c.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
