// Who the agent is. Local mode: a development identity picked on the sign-in screen
// (`Authorization: Dev support:agent-1`). AWS: Cognito's hosted sign-in, authorization code with
// PKCE (a public client, no secret). The session lives in sessionStorage (this tab only, gone
// when it closes), never in localStorage; signing out clears it.

const SESSION = "console.session";
const PENDING = "console.pkce";

export function currentSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION) || "null");
    if (session && session.expiresAt && Date.now() > session.expiresAt) {
      sessionStorage.removeItem(SESSION);
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

export function authorizationHeader() {
  const session = currentSession();
  if (!session) return "";
  return session.kind === "dev" ? session.authorization : `Bearer ${session.accessToken}`;
}

export function devSignIn(role, id) {
  const session = { kind: "dev", authorization: `Dev ${role}:${id}`, who: `${role}:${id}` };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

export function forget() {
  sessionStorage.removeItem(SESSION);
  sessionStorage.removeItem(PENDING);
}

/** Sign out: forget the tokens; in AWS also end the Cognito session (its logout endpoint). */
export function signOut(config) {
  forget();
  // Cognito's session outlives the access token: end it even when the token has expired, or the
  // next "Sign in" would let anyone at this browser in without a password.
  if (config.mode === "cognito" && config.cognito) {
    const url = new URL("/logout", config.cognito.domain);
    url.searchParams.set("client_id", config.cognito.clientId);
    url.searchParams.set("logout_uri", config.cognito.redirectUri);
    window.location.assign(url.toString());
    return true;
  }
  return false;
}

function base64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(size = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** Go to Cognito's hosted sign-in with a PKCE challenge (RFC 7636, S256) and a state. */
export async function startCognitoSignIn(config) {
  const verifier = randomText(48);
  const state = randomText(16);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const url = new URL("/oauth2/authorize", config.cognito.domain);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", config.cognito.clientId);
  url.searchParams.set("redirect_uri", config.cognito.redirectUri);
  url.searchParams.set("scope", config.cognito.scopes || "openid email");
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", challenge);
  url.searchParams.set("code_challenge_method", "S256");
  window.location.assign(url.toString());
}

/** A sign-in that failed for a reason the page states in the agent's language (`key` in i18n.js). */
export class SignInError extends Error {
  constructor(key, params = {}) {
    super(key);
    this.key = key;
    this.params = params;
  }
}

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

/**
 * Back from Cognito with `?code=…&state=…`: exchange the code (and the PKCE verifier) for tokens.
 * Returns the session, null when the URL carries no answer, or throws with Cognito's error.
 */
export async function completeCognitoSignIn(config) {
  const query = new URLSearchParams(window.location.search);
  if (!query.has("code") && !query.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  window.history.replaceState(null, "", window.location.pathname + window.location.hash);
  // The state first, errors included: an error link planted by someone else shows none of its text.
  if (!pending || pending.state !== query.get("state")) throw new SignInError("signin.stateMismatch");
  if (query.has("error")) throw new Error(query.get("error_description") || query.get("error"));
  const response = await fetch(new URL("/oauth2/token", config.cognito.domain), {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.cognito.clientId,
      code: query.get("code"),
      redirect_uri: config.cognito.redirectUri,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok) throw new SignInError("signin.tokenRefused", { message: tokens.error || response.status });
  const identity = claimsOf(tokens.id_token || "");
  const session = {
    kind: "cognito",
    accessToken: tokens.access_token,
    expiresAt: Date.now() + (Number(tokens.expires_in) || 3600) * 1000,
    who: identity.email || identity["cognito:username"] || "",
  };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}
