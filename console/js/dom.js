// Builds elements from data. Text is only ever set as text (text nodes, textContent): no data
// reaches innerHTML, so a name such as `<img src=x onerror=…>` shows as those characters.

/**
 * el("a", { href: "#/claims", class: "x", onclick: f }, "text", child…)
 * Attributes are set with setAttribute (never an `on…` attribute: functions are listeners).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(name, "");
    } else if (name === "value") {
      node.value = String(value);
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the content of `node` by `children`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** A definition list of [term, description] pairs, descriptions as text or nodes. */
export function facts(pairs) {
  return el(
    "dl",
    { class: "facts" },
    pairs.filter(([, value]) => value !== null && value !== undefined && value !== "").flatMap(([term, value]) => [
      el("dt", {}, term),
      el("dd", {}, value),
    ]),
  );
}

/** A table: caption, column headers ([text, numeric?]) and rows of cells (text or nodes). */
export function table(caption, columns, rows) {
  return el(
    "table",
    {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, columns.map(([text, numeric]) => el("th", { scope: "col", class: numeric ? "num" : null }, text)))),
    el(
      "tbody",
      {},
      rows.map((cells) =>
        el(
          "tr",
          {},
          cells.map((cell, index) => el("td", { class: columns[index][1] ? "num" : null }, cell)),
        ),
      ),
    ),
  );
}

export function hashFor(...parts) {
  return "#/" + parts.map((part) => encodeURIComponent(part)).join("/");
}
