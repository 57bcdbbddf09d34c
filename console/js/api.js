// The loyalty HTTP API, called exactly as a script would (docs/openapi.json). No rule lives here:
// a refusal is the API's, shown with its status, code and message.

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export function createApi(baseUrl, authorization) {
  async function request(method, path, { query = {}, body } = {}) {
    const url = new URL(`${baseUrl}${path}`, window.location.href);
    for (const [name, value] of Object.entries(query)) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, String(value));
    }
    const headers = { Accept: "application/json", Authorization: authorization() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (problem) {
      throw new ApiError(0, "network", problem.message || String(problem));
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      const summary = error.message || (data && data.message) || response.statusText;
      // The API's 422 message already lists its fields: add only those it does not name.
      const fields = (error.fields || [])
        .map((f) => `${f.field}: ${f.reason}`)
        .filter((text) => !String(summary || "").includes(text))
        .join("; ");
      const message = [summary, fields].filter(Boolean).join(" — ");
      throw new ApiError(response.status, error.code || `http_${response.status}`, message, data);
    }
    return data;
  }

  const member = (id) => `/members/${encodeURIComponent(id)}`;
  return {
    member: (id) => request("GET", member(id)),
    balance: (id) => request("GET", `${member(id)}/balance`),
    lots: (id) => request("GET", `${member(id)}/lots`),
    ledger: (id, cursor, limit) => request("GET", `${member(id)}/ledger`, { query: { limit, cursor } }),
    fileClaim: (id, claim) => request("POST", `${member(id)}/claims`, { body: claim }),
    claims: (status, cursor, limit) => request("GET", "/claims", { query: { status, cursor, limit } }),
    claim: (claimId) => request("GET", `/claims/${encodeURIComponent(claimId)}`),
    decide: (claimId, decision) =>
      request("POST", `/claims/${encodeURIComponent(claimId)}/decision`, { body: decision }),
  };
}
