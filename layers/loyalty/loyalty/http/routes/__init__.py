"""One router per Lambda job; `loyalty.http.openapi` includes them all to document the whole API."""
