// The page of `conclave web`. It holds no keys and does no cryptography: every action is a
// call to the local client's API, and what arrives is pushed over server-sent events.
import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, ApiError, type Alert, type Contact, type GroupSummary, type Me, type Pushed } from "./api";
import { Conversation } from "./conversation";
import { Contacts, Devices, ErrorLine, Register } from "./people";
import "./style.css";

type Phase = "starting" | "no_session" | "register" | "ready";

/** Where the page is: `#/`, `#/g/ID`, `#/contacts`, `#/devices`. */
function route(): string {
  const h = location.hash.replace(/^#/, "");
  return h.startsWith("/") ? h : "/";
}

function App() {
  const [phase, setPhase] = useState<Phase>("starting");
  const [fatal, setFatal] = useState<ApiError | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [me, setMe] = useState<Me | null>(null);
  const [groups, setGroups] = useState<GroupSummary[]>([]);
  const [contacts, setContacts] = useState<Contact[]>([]);
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [path, setPath] = useState(route());
  // Bumped on every push, so the open conversation reloads what changed.
  const [tick, setTick] = useState(0);
  const [live, setLive] = useState(false);

  const fail = useCallback((e: unknown) => {
    setError(e instanceof ApiError ? e : new ApiError("failed", String(e)));
  }, []);

  const refresh = useCallback(async () => {
    try {
      const [g, c, a] = await Promise.all([api.groups(), api.contacts(), api.alerts()]);
      setGroups(g);
      setContacts(c);
      setAlerts(a);
    } catch (e) {
      fail(e);
    }
  }, [fail]);

  // Session: the link's secret (in the fragment, never sent in a URL) is exchanged once
  // for the cookie; a reload resumes with the cookie.
  useEffect(() => {
    (async () => {
      try {
        const m = /^#k=([0-9a-f]+)$/.exec(location.hash);
        if (m) {
          await api.login(m[1]);
          history.replaceState(null, "", "/#/");
          setPath("/");
        } else {
          await api.resume();
        }
      } catch (e) {
        if (e instanceof ApiError && (e.code === "no_session" || e.code === "bad_secret")) {
          setFatal(e);
          setPhase("no_session");
          return;
        }
        setFatal(e instanceof ApiError ? e : new ApiError("failed", String(e)));
        setPhase("no_session");
        return;
      }
      try {
        const who = await api.me();
        setMe(who);
        setPhase(who.registered ? "ready" : "register");
      } catch (e) {
        setFatal(e instanceof ApiError ? e : new ApiError("failed", String(e)));
        setPhase("no_session");
      }
    })();
  }, []);

  useEffect(() => {
    const onHash = () => setPath(route());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  // Live updates once the device runs.
  useEffect(() => {
    if (phase !== "ready") return;
    refresh();
    const source = new EventSource("/api/events");
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(false);
    source.onmessage = (m) => {
      let pushed: Pushed | null = null;
      try {
        pushed = JSON.parse(m.data) as Pushed;
      } catch {
        return;
      }
      if (pushed.type === "error") {
        setError(new ApiError("stream", pushed.text ?? "the event stream reported an error"));
      }
      setTick((t) => t + 1);
      refresh();
    };
    return () => source.close();
  }, [phase, refresh]);

  if (phase === "starting") return <main class="center"><p>Opening this device…</p></main>;
  if (phase === "no_session")
    return (
      <main class="center">
        <h1>Conclave</h1>
        <ErrorLine error={fatal} />
        <p>
          This page opens only from the link <code>conclave web</code> printed when it started (the link holds a secret
          for this launch). Start <code>conclave web</code> again if it has stopped.
        </p>
      </main>
    );
  if (phase === "register" && me)
    return (
      <Register
        me={me}
        onDone={(who) => {
          setMe(who);
          setPhase("ready");
        }}
      />
    );
  if (!me) return null;

  const pending = contacts.filter((c) => c.state === "pending").length;
  const open = path.startsWith("/g/") ? decodeURIComponent(path.slice(3)) : null;
  const view = open ? "chat" : path === "/contacts" ? "contacts" : path === "/devices" ? "devices" : "home";

  const newGroup = async () => {
    try {
      const g = await api.createGroup();
      await refresh();
      location.hash = `#/g/${g.id}?add`;
    } catch (e) {
      fail(e);
    }
  };

  return (
    <div class={`layout view-${view}`}>
      <header class="top">
        <a class="brand" href="#/">Conclave</a>
        <span class="who" title={`device ${me.device}`}>
          {me.user} <small>· device {me.device}</small>
        </span>
        <span class={live ? "live on" : "live"} role="status">
          {live ? "live" : "offline"}
        </span>
      </header>
      {alerts.length > 0 && (
        <section class="alerts" aria-label="Security alerts">
          {alerts.map((a) => (
            <div class="alert" role="alert" key={a.id}>
              {a.user === me.user ? (
                <span>
                  {a.kind === "unknown_device"
                    ? `The directory lists a device of your account that none of your devices added (${a.device}). If it is not one of yours, revoke it now.`
                    : a.kind === "device_added"
                      ? `Your account has a new device (${a.device}). If it is not one of yours, revoke it from another device.`
                      : `Your device ${a.device} was revoked.`}
                </span>
              ) : (
                <span>
                  <strong>{a.user}</strong>{" "}
                  {a.kind === "device_added" ? `has a new device (${a.device}).` : `revoked a device (${a.device}).`}{" "}
                  Compare your group's verification code with them before you trust it.
                </span>
              )}
              <button
                type="button"
                onClick={async () => {
                  try {
                    await api.dismissAlert(a.id);
                    refresh();
                  } catch (e) {
                    fail(e);
                  }
                }}
              >
                Dismiss
              </button>
            </div>
          ))}
        </section>
      )}
      <ErrorLine error={error} onClose={() => setError(null)} />
      <nav class="side" aria-label="Conversations">
        <div class="side-actions">
          <button type="button" onClick={newGroup}>
            New group
          </button>
          <a href="#/contacts" class="button-link">
            Contacts{pending > 0 && <span class="badge" aria-label={`${pending} requests`}>{pending}</span>}
          </a>
          <a href="#/devices" class="button-link">
            Devices
          </a>
        </div>
        {groups.length === 0 ? (
          <p class="muted">No conversations yet. Add a contact, then create a group.</p>
        ) : (
          <ul class="groups">
            {groups.map((g) => (
              <li key={g.id}>
                <a
                  href={`#/g/${g.id}`}
                  class={open === g.id ? "group current" : "group"}
                  aria-current={open === g.id ? "page" : undefined}
                >
                  <span class="group-name">{g.users.length ? g.users.join(", ") : `group ${g.short}`}</span>
                  {g.unread > 0 && (
                    <span class="badge" aria-label={`${g.unread} unread`}>
                      {g.unread}
                    </span>
                  )}
                  {!g.member && <span class="tag">left</span>}
                  <span class="group-last">
                    {g.last ? `${g.last.own ? "you" : g.last.user}: ${g.last.text}` : `id ${g.short}`}
                  </span>
                </a>
              </li>
            ))}
          </ul>
        )}
      </nav>
      <main class="pane">
        {view === "chat" && open && (
          <Conversation
            key={open.split("?")[0]}
            id={open.split("?")[0]}
            startAdding={open.endsWith("?add")}
            me={me}
            contacts={contacts}
            tick={tick}
            onChange={refresh}
            onError={fail}
          />
        )}
        {view === "contacts" && <Contacts contacts={contacts} onChange={refresh} />}
        {view === "devices" && <Devices me={me} onError={fail} tick={tick} />}
        {view === "home" && (
          <section class="welcome">
            <h1>Hello, {me.user}</h1>
            <p>Choose a conversation, or start one: add a contact, then create a group and add them.</p>
          </section>
        )}
      </main>
    </div>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
