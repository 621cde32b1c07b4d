// Registration, contacts and the user's own devices; and how errors are shown.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, type Contact, type Me, type OwnDevice } from "./api";

/** One readable error line: what went wrong and what to do next. */
export function ErrorLine({ error, onClose }: { error: ApiError | null; onClose?: () => void }) {
  if (!error) return null;
  return (
    <div class="error banner" role="alert">
      <span>
        {error.message}
        {error.hint && <span class="hint"> — {error.hint}</span>}
      </span>
      {onClose && (
        <button type="button" onClick={onClose}>
          Close
        </button>
      )}
    </div>
  );
}

function asError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError("failed", String(e));
}

/** An empty profile: register this device with an invitation code or an OIDC ID token. */
export function Register({ me, onDone }: { me: Me; onDone: (me: Me) => void }) {
  const [authUrl, setAuthUrl] = useState(me.auth_url);
  const [dsUrl, setDsUrl] = useState(me.delivery_url);
  const [how, setHow] = useState<"code" | "oidc">("code");
  const [secret, setSecret] = useState("");
  // The nonce of the AS's challenge that the ID token must carry; each serves one attempt.
  const [nonce, setNonce] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const askNonce = async () => {
    setBusy(true);
    setError(null);
    try {
      const c = await api.registerChallenge(authUrl.trim());
      setNonce(c.nonce);
      setSecret("");
    } catch (e) {
      setError(asError(e));
    } finally {
      setBusy(false);
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const value = secret.trim();
      const who = await api.register({
        auth_url: authUrl.trim(),
        delivery_url: dsUrl.trim(),
        ...(how === "code" ? { code: value } : { id_token: value }),
      });
      onDone(who);
    } catch (e) {
      // The attempt spent the challenge: a new nonce (and token) is needed.
      if (how === "oidc") setNonce(null);
      setError(asError(e));
    } finally {
      setBusy(false);
    }
  };

  const needsNonce = how === "oidc" && nonce === null;
  return (
    <main class="center">
      <h1>Register this device</h1>
      <p>
        This profile holds no device yet. Register it with an invitation code from your server's operator, or with an
        OpenID Connect ID token. Keys are made here, on this computer, by the Conclave client.
      </p>
      <form class="stack" onSubmit={submit}>
        <fieldset>
          <legend>Sign in with</legend>
          <label>
            <input type="radio" name="how" checked={how === "code"} onChange={() => setHow("code")} /> an invitation code
          </label>
          <label>
            <input type="radio" name="how" checked={how === "oidc"} onChange={() => setHow("oidc")} /> an OIDC ID token
          </label>
        </fieldset>
        {how === "oidc" && (
          <div class="stack">
            {nonce === null ? (
              <button type="button" id="reg-nonce" onClick={askNonce} disabled={busy}>
                Get a nonce
              </button>
            ) : (
              <p>
                Ask your identity provider for an ID token with this nonce (it serves one attempt):{" "}
                <code id="reg-nonce-value">{nonce}</code>
              </p>
            )}
          </div>
        )}
        {!needsNonce && (
          <>
            <label for="reg-secret">{how === "code" ? "Invitation code" : "ID token"}</label>
            <input
              id="reg-secret"
              value={secret}
              required
              autocomplete="off"
              spellcheck={false}
              onInput={(e) => setSecret((e.target as HTMLInputElement).value)}
            />
          </>
        )}
        <details>
          <summary>Servers</summary>
          <label for="reg-as">Authentication Service</label>
          <input id="reg-as" value={authUrl} onInput={(e) => setAuthUrl((e.target as HTMLInputElement).value)} />
          <label for="reg-ds">Delivery Service</label>
          <input id="reg-ds" value={dsUrl} onInput={(e) => setDsUrl((e.target as HTMLInputElement).value)} />
        </details>
        <ErrorLine error={error} />
        <button type="submit" disabled={busy || needsNonce || !secret.trim()}>
          {busy ? "Registering…" : "Register"}
        </button>
      </form>
    </main>
  );
}

const stateText: Record<string, string> = {
  requested: "asked — waiting for their answer",
  pending: "wants to be your contact",
  accepted: "contact",
  declined: "declined",
};

export function Contacts({ contacts, onChange }: { contacts: Contact[]; onChange: () => void }) {
  const [user, setUser] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const act = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await what();
      onChange();
    } catch (e) {
      setError(asError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="page" aria-label="Contacts">
      <header class="conv-head">
        <a href="#/" class="back" aria-label="Back to conversations">
          ←
        </a>
        <h1>Contacts</h1>
      </header>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          const u = user.trim();
          if (u)
            act(async () => {
              await api.requestContact(u);
              setUser("");
            });
        }}
      >
        <label for="contact-user">Ask someone to be your contact</label>
        <input
          id="contact-user"
          value={user}
          placeholder="user@example.org"
          autocomplete="off"
          onInput={(e) => setUser((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy || !user.trim()}>
          Ask
        </button>
      </form>
      <ErrorLine error={error} onClose={() => setError(null)} />
      {contacts.length === 0 ? (
        <p class="muted">No contacts yet.</p>
      ) : (
        <ul class="contacts">
          {contacts.map((c) => (
            <li key={c.user}>
              <strong>{c.user}</strong> <span class={`tag ${c.state}`}>{stateText[c.state] ?? c.state}</span>
              {c.devices.length > 0 && <span class="muted"> · {c.devices.length} device(s)</span>}
              {c.state === "pending" && (
                <span class="buttons">
                  <button type="button" disabled={busy} onClick={() => act(() => api.acceptContact(c.user))}>
                    Accept {c.user}
                  </button>
                  <button type="button" disabled={busy} onClick={() => act(() => api.declineContact(c.user))}>
                    Decline
                  </button>
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** The user's devices, each with the code of its certified key, and how to add one. */
export function Devices({ me, tick, onError }: { me: Me; tick: number; onError: (e: unknown) => void }) {
  const [devices, setDevices] = useState<OwnDevice[] | null>(null);
  useEffect(() => {
    api.devices().then(setDevices, onError);
  }, [tick, onError]);
  const own = devices?.find((d) => d.this_device);
  return (
    <section class="page" aria-label="Your devices">
      <header class="conv-head">
        <a href="#/" class="back" aria-label="Back to conversations">
          ←
        </a>
        <h1>Your devices</h1>
      </header>
      {devices === null ? (
        <p>Loading…</p>
      ) : (
        <ul class="devices own">
          {devices.map((d) => (
            <li key={d.device}>
              device <code>{d.device}</code> {d.this_device && <strong>(this device)</strong>}
              <div>
                key code <code class="keycode">{d.key_code}</code>
              </div>
            </li>
          ))}
        </ul>
      )}
      <h2>Add a device</h2>
      <ol>
        <li>
          On the new device, run <code>conclave web --profile NEW-DIR</code> and register it as <strong>{me.user}</strong>{" "}
          (a new invitation code for {me.user}, or sign in with OIDC).
        </li>
        <li>
          This device adds it to your groups by itself and tells your contacts. It reads messages from then on, not
          before.
        </li>
        <li>
          Pairing check: the new device shows its key code on its own Devices page; it must equal the one listed here
          for it{own ? ` (this device's is ${own.key_code})` : ""}.
        </li>
      </ol>
    </section>
  );
}
