// The local API of `conclave web` (its OpenAPI document is crates/cli/web/openapi.json).
// Every state-changing request carries the CSRF token the server handed out with the
// session; the session itself is an HttpOnly cookie the page never sees.

/** An error as the server reports it: a stable code, what went wrong, what to do. */
export class ApiError extends Error {
  constructor(
    public code: string,
    message: string,
    public hint?: string,
    public status = 0,
  ) {
    super(message);
  }
}

export interface Me {
  registered: boolean;
  user?: string;
  device?: string;
  auth_url: string;
  delivery_url: string;
}

export type ContactState = "requested" | "pending" | "accepted" | "declined";

export interface Contact {
  user: string;
  state: ContactState;
  devices: string[];
}

export interface MessageView {
  user: string;
  device: string;
  text: string;
  at: number;
  own: boolean;
  state: "sent" | "received";
}

export interface GroupSummary {
  id: string;
  short: string;
  users: string[];
  unread: number;
  member: boolean;
  last?: MessageView;
}

export interface MemberDevice {
  device: string;
  in_group: boolean;
  key_code?: string;
  certificate: "valid" | "checked_at_join" | "failed" | "unknown";
  transparency: "proven" | "absent" | "failed" | "unknown";
  detail?: string;
}

export interface Member {
  user: string;
  devices: MemberDevice[];
}

export interface GroupDetail {
  id: string;
  short: string;
  member: boolean;
  epoch?: number;
  code?: string;
  members: Member[];
}

export interface OwnDevice {
  device: string;
  this_device: boolean;
  key_code: string;
}

export interface Alert {
  id: number;
  kind: "device_added" | "device_revoked" | "unknown_device";
  user: string;
  device: string;
  at: number;
}

/** What the server pushes over server-sent events (`/api/events`). */
export interface Pushed {
  type: string;
  group?: string;
  user?: string;
  device?: string;
  text?: string;
}

let csrf = "";

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") headers["X-Conclave-Csrf"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(
      "web_unreachable",
      "the local conclave web server does not answer",
      "is `conclave web` still running? Start it again and open the new link",
    );
  }
  if (response.status === 204) return undefined as T;
  let data: unknown;
  try {
    data = await response.json();
  } catch {
    throw new ApiError("bad_response", `unexpected answer (${response.status})`, undefined, response.status);
  }
  if (!response.ok) {
    const e = data as { code?: string; error?: string; hint?: string };
    throw new ApiError(e.code ?? "failed", e.error ?? `request failed (${response.status})`, e.hint, response.status);
  }
  return data as T;
}

const enc = encodeURIComponent;

export const api = {
  /** Exchanges the launch secret (from the printed link) for the session cookie. */
  async login(secret: string): Promise<void> {
    const s = await call<{ csrf: string }>("POST", "/api/session", { secret });
    csrf = s.csrf;
  },
  /** Resumes the session the cookie names. */
  async resume(): Promise<void> {
    const s = await call<{ csrf: string }>("GET", "/api/session");
    csrf = s.csrf;
  },
  me: () => call<Me>("GET", "/api/me"),
  /** A registration challenge: the nonce an OIDC ID token must carry. */
  registerChallenge: (auth_url: string) =>
    call<{ nonce: string; expires_at: number }>("POST", "/api/register/challenge", { auth_url }),
  register: (r: { auth_url: string; delivery_url: string; code?: string; id_token?: string }) =>
    call<Me>("POST", "/api/register", r),
  devices: () => call<OwnDevice[]>("GET", "/api/devices"),
  contacts: () => call<Contact[]>("GET", "/api/contacts"),
  requestContact: (user: string) => call<void>("POST", "/api/contacts", { user }),
  acceptContact: (user: string) => call<void>("POST", `/api/contacts/${enc(user)}/accept`),
  declineContact: (user: string) => call<void>("POST", `/api/contacts/${enc(user)}/decline`),
  groups: () => call<GroupSummary[]>("GET", "/api/groups"),
  createGroup: () => call<GroupSummary>("POST", "/api/groups"),
  group: (id: string) => call<GroupDetail>("GET", `/api/groups/${enc(id)}`),
  messages: (id: string) => call<MessageView[]>("GET", `/api/groups/${enc(id)}/messages`),
  send: (id: string, text: string) => call<MessageView>("POST", `/api/groups/${enc(id)}/messages`, { text }),
  markRead: (id: string) => call<void>("POST", `/api/groups/${enc(id)}/read`),
  addMember: (id: string, user: string) => call<void>("POST", `/api/groups/${enc(id)}/members`, { user }),
  removeMember: (id: string, user: string) => call<void>("DELETE", `/api/groups/${enc(id)}/members/${enc(user)}`),
  leave: (id: string) => call<void>("POST", `/api/groups/${enc(id)}/leave`),
  alerts: () => call<Alert[]>("GET", "/api/alerts"),
  dismissAlert: (id: number) => call<void>("POST", `/api/alerts/${id}/dismiss`),
};
