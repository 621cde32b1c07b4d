// One conversation: its history and live messages, the input line, the members with their
// devices' certificate and key-transparency status, and the verification code.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, type Contact, type GroupDetail, type Me, type MessageView } from "./api";
import { Qr } from "./qr";

interface Props {
  id: string;
  startAdding: boolean;
  me: Me;
  contacts: Contact[];
  tick: number;
  onChange: () => void;
  onError: (e: unknown) => void;
}

/** A message typed here, on its way to the Delivery Service. */
interface Outgoing {
  key: number;
  text: string;
  state: "sending" | "failed";
  error?: string;
}

function time(at: number): string {
  return new Date(at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

const certificateText: Record<string, string> = {
  valid: "certificate valid (chain to the AS root)",
  checked_at_join: "certificate checked when it joined",
  failed: "certificate check failed",
  unknown: "certificate not checked",
};
const transparencyText: Record<string, string> = {
  proven: "in the key-transparency directory",
  absent: "not among the user's current devices",
  failed: "transparency proof failed",
  unknown: "transparency not checked",
};

export function Conversation({ id, startAdding, me, contacts, tick, onChange, onError }: Props) {
  const [messages, setMessages] = useState<MessageView[]>([]);
  const [detail, setDetail] = useState<GroupDetail | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [outgoing, setOutgoing] = useState<Outgoing[]>([]);
  const [text, setText] = useState("");
  const [panel, setPanel] = useState<"none" | "members" | "verify">(startAdding ? "members" : "none");
  const [adding, setAdding] = useState("");
  const [busy, setBusy] = useState(false);
  const [localError, setLocalError] = useState<ApiError | null>(null);
  const listEnd = useRef<HTMLLIElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const counter = useRef(0);

  const load = async () => {
    try {
      const [m, d] = await Promise.all([api.messages(id), api.group(id)]);
      setMessages(m);
      setDetail(d);
      setLoaded(true);
      await api.markRead(id);
      onChange();
    } catch (e) {
      onError(e);
    }
  };

  useEffect(() => {
    load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, tick]);

  useEffect(() => {
    listEnd.current?.scrollIntoView({ block: "end" });
  }, [messages.length, outgoing.length]);

  const send = async (body: string, retryKey?: number) => {
    const key = retryKey ?? ++counter.current;
    setOutgoing((o) => [...o.filter((x) => x.key !== key), { key, text: body, state: "sending" }]);
    try {
      const sent = await api.send(id, body);
      setOutgoing((o) => o.filter((x) => x.key !== key));
      setMessages((m) => [...m, sent]);
      onChange();
    } catch (e) {
      const message = e instanceof ApiError ? `${e.message}${e.hint ? ` — ${e.hint}` : ""}` : String(e);
      setOutgoing((o) => o.map((x) => (x.key === key ? { ...x, state: "failed", error: message } : x)));
    }
  };

  const submit = (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText("");
    send(body);
    input.current?.focus();
  };

  const act = async (what: () => Promise<void>) => {
    setBusy(true);
    setLocalError(null);
    try {
      await what();
      await load();
    } catch (e) {
      setLocalError(e instanceof ApiError ? e : new ApiError("failed", String(e)));
    } finally {
      setBusy(false);
    }
  };

  const member = detail?.member ?? true;
  const inGroup = new Set(detail?.members.map((m) => m.user) ?? []);
  const candidates = contacts.filter((c) => c.state === "accepted" && !inGroup.has(c.user));
  const others = detail?.members.map((m) => m.user).filter((u) => u !== me.user) ?? [];
  const title = detail ? others.join(", ") || `group ${detail.short} (only you)` : "…";

  return (
    <section class="conversation" aria-label={`Conversation ${title}`}>
      <header class="conv-head">
        <a href="#/" class="back" aria-label="Back to conversations">
          ←
        </a>
        <h1 class="conv-title">{title}</h1>
        <div class="conv-actions">
          <button
            type="button"
            aria-expanded={panel === "members"}
            onClick={() => setPanel(panel === "members" ? "none" : "members")}
          >
            Members
          </button>
          <button
            type="button"
            aria-expanded={panel === "verify"}
            onClick={() => setPanel(panel === "verify" ? "none" : "verify")}
          >
            Verify
          </button>
        </div>
      </header>

      {panel === "members" && detail && (
        <section class="panel" aria-label="Members">
          <h2>Members</h2>
          {localError && (
            <p class="error" role="alert">
              {localError.message}
              {localError.hint && <span class="hint"> — {localError.hint}</span>}
            </p>
          )}
          <ul class="members">
            {detail.members.map((m) => (
              <li key={m.user}>
                <div class="member-head">
                  <strong>{m.user === me.user ? `${m.user} (you)` : m.user}</strong>
                  {member && m.user !== me.user && (
                    <button
                      type="button"
                      disabled={busy}
                      onClick={() => act(() => api.removeMember(id, m.user))}
                    >
                      Remove {m.user}
                    </button>
                  )}
                </div>
                <ul class="devices">
                  {m.devices.map((d) => (
                    <li key={d.device} class={d.in_group ? "" : "muted"}>
                      device <code>{d.device}</code>
                      {d.device === me.device && m.user === me.user && " (this device)"}
                      {!d.in_group && " — not in this group"}
                      {d.key_code && (
                        <>
                          {" "}· key <code>{d.key_code}</code>
                        </>
                      )}
                      <div class="status">
                        <span class={`pill ${d.certificate}`}>{certificateText[d.certificate] ?? d.certificate}</span>
                        <span class={`pill ${d.transparency}`}>
                          {transparencyText[d.transparency] ?? d.transparency}
                        </span>
                      </div>
                      {d.detail && <div class="hint">{d.detail}</div>}
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ul>
          {member && (
            <form
              class="row"
              onSubmit={(e) => {
                e.preventDefault();
                const user = adding.trim();
                if (user) act(async () => {
                  await api.addMember(id, user);
                  setAdding("");
                });
              }}
            >
              <label for="add-user">Add a person (all their devices)</label>
              <input
                id="add-user"
                list="add-candidates"
                value={adding}
                placeholder="user@example.org"
                autocomplete="off"
                onInput={(e) => setAdding((e.target as HTMLInputElement).value)}
              />
              <datalist id="add-candidates">
                {candidates.map((c) => (
                  <option key={c.user} value={c.user} />
                ))}
              </datalist>
              <button type="submit" disabled={busy || !adding.trim()}>
                {busy ? "Working…" : "Add"}
              </button>
            </form>
          )}
          {member && (
            <button type="button" class="quiet" disabled={busy} onClick={() => act(() => api.leave(id))}>
              Leave this group
            </button>
          )}
        </section>
      )}

      {panel === "verify" && detail && (
        <section class="panel" aria-label="Verification">
          <h2>Verify this conversation</h2>
          {detail.code ? (
            <>
              <p>
                Compare this code with another member — read aloud, or side by side. Equal codes mean you share the
                same group state and keys (epoch {detail.epoch}); it changes whenever the group does.
              </p>
              <p class="code" data-testid="verification-code">
                {detail.code}
              </p>
              <Qr text={`conclave:${detail.id}:${detail.epoch}:${detail.code.replace(/ /g, "")}`} label="QR image of the verification code" />
            </>
          ) : (
            <p>This device is no longer in the group: there is no code to compare.</p>
          )}
        </section>
      )}

      <ol class="messages" aria-label="Messages" aria-live="polite">
        {messages.length === 0 && outgoing.length === 0 && (
          <li class="muted">{loaded ? "No messages yet." : "Loading…"}</li>
        )}
        {messages.map((m, i) => (
          <li key={i} class={m.own ? "msg own" : "msg"}>
            <div class="meta">
              <span class="sender">{m.own ? "you" : m.user}</span> <span class="device">device {m.device}</span>{" "}
              <time>{time(m.at)}</time> <span class="state">{m.state === "sent" ? "✓ sent" : ""}</span>
            </div>
            <div class="body">{m.text}</div>
          </li>
        ))}
        {outgoing.map((o) => (
          <li key={`o${o.key}`} class="msg own pending">
            <div class="meta">
              <span class="sender">you</span>{" "}
              <span class="state">{o.state === "sending" ? "sending…" : "not sent"}</span>
            </div>
            <div class="body">{o.text}</div>
            {o.state === "failed" && (
              <div class="error" role="alert">
                {o.error}{" "}
                <button type="button" onClick={() => send(o.text, o.key)}>
                  Retry
                </button>
                <button type="button" onClick={() => setOutgoing((x) => x.filter((y) => y.key !== o.key))}>
                  Discard
                </button>
              </div>
            )}
          </li>
        ))}
        <li ref={listEnd} class="end" aria-hidden="true" />
      </ol>

      {member ? (
        <form class="composer" onSubmit={submit}>
          <label for="composer-text" class="sr-only">
            Message
          </label>
          <textarea
            id="composer-text"
            ref={input}
            rows={1}
            value={text}
            placeholder="Write a message (Enter sends)"
            title="Enter sends; Shift+Enter starts a new line"
            onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) submit(e);
            }}
          />
          <button type="submit">Send</button>
        </form>
      ) : (
        <p class="notice" role="status">
          You are no longer a member of this group: you were removed or left. Its history stays readable here; you
          cannot send.
        </p>
      )}
    </section>
  );
}
