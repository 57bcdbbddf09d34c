// One member: profile, balance (what expires when, points owed), lots, the ledger page by page
// (who, why, when, the lots each movement touched), and a claim filed on the member's behalf.

import { ApiError } from "../api.js";
import { el, facts, hashFor, replace, table } from "../dom.js";
import { formatDay, formatInstant, formatPoints, t, term } from "../i18n.js";
import { pager } from "./claims.js";

export const LEDGER_PAGE_SIZE = 10;

export async function renderMember(context, memberId) {
  let profile, balance, lots;
  try {
    [profile, balance, lots] = await Promise.all([
      context.api.member(memberId),
      context.api.balance(memberId),
      context.api.lots(memberId),
    ]);
  } catch (error) {
    if (context.failed(error)) return;
    const text =
      error instanceof ApiError && error.status === 404 ? t("member.notFound", { id: memberId }) : context.describe(error);
    context.show(el("h2", {}, memberId), el("p", { class: "alert", role: "alert" }, text));
    return;
  }
  const ledger = el("section", { "aria-labelledby": "ledger-title" }, el("h3", { id: "ledger-title" }, t("member.ledger")));
  context.show(
    el("h2", { id: "member-name" }, profile.name || profile.memberId),
    el(
      "section",
      { "aria-labelledby": "balance-title" },
      el("h3", { id: "balance-title" }, t("member.balance")),
      el(
        "div",
        { class: "figures" },
        el("p", { class: "figure" }, t("member.available"), el("strong", { id: "balance-available" }, formatPoints(balance.available))),
        el("p", { class: "figure" }, t("member.owed"), el("strong", { id: "balance-owed" }, formatPoints(balance.owed || 0))),
      ),
      balance.expiring.length
        ? table(
            t("member.expiring"),
            [[t("member.date")], [t("member.points"), true]],
            balance.expiring.map((due) => [formatDay(due.date), formatPoints(due.points)]),
          )
        : el("p", {}, t("member.expiringNone")),
    ),
    el(
      "section",
      { "aria-labelledby": "profile-title" },
      el("h3", { id: "profile-title" }, t("member.profile")),
      facts([
        [t("member.id"), profile.memberId],
        [t("member.name"), profile.name],
        [t("member.email"), profile.email],
        [t("member.locale"), profile.locale],
        [t("member.optIn"), profile.emailOptIn ? t("member.yes") : t("member.no")],
        [t("member.enrolled"), formatInstant(profile.enrolledAt)],
      ]),
    ),
    ledger,
    el(
      "section",
      { "aria-labelledby": "lots-title" },
      el("h3", { id: "lots-title" }, t("member.lots")),
      lots.lots.length
        ? table(
            t("member.lots"),
            [[t("member.lot")], [t("member.source")], [t("member.original"), true], [t("member.remaining"), true], [t("member.earned")], [t("member.expires")]],
            lots.lots.map((lot) => [
              lot.lotId,
              term("source", lot.source.kind),
              formatPoints(lot.original),
              formatPoints(lot.remaining),
              formatInstant(lot.earnedAt),
              lot.expiresAt ? formatInstant(lot.expiresAt) : t("member.never"),
            ]),
          )
        : el("p", {}, t("member.lotsNone")),
    ),
    claimForm(context, memberId),
  );
  await showLedger(context, ledger, memberId, [null], 0);
}

async function showLedger(context, section, memberId, cursors, page) {
  const heading = section.firstChild;
  let answer;
  try {
    answer = await context.api.ledger(memberId, cursors[page], LEDGER_PAGE_SIZE);
  } catch (error) {
    if (context.failed(error)) return;
    replace(section, heading, el("p", { class: "alert", role: "alert" }, context.describe(error)));
    return;
  }
  const known = cursors.slice(0, page + 1);
  if (answer.nextCursor) known[page + 1] = answer.nextCursor;
  const go = async (to) => {
    await showLedger(context, section, memberId, known, to);
    section.querySelector("caption")?.setAttribute("tabindex", "-1");
    section.querySelector("caption")?.focus();
  };
  const rows = answer.entries.map((entry) => [
    formatInstant(entry.occurredAt),
    term("movement", entry.type),
    formatPoints(entry.points),
    formatPoints(entry.balanceAfter),
    `${entry.actor.kind}:${entry.actor.id}`,
    entry.reason || "",
    entry.lots.map((lot) => `${lot.lotId} (${formatPoints(lot.points)})`).join(", "),
  ]);
  replace(
    section,
    heading,
    rows.length
      ? table(
          t("member.ledgerCaption", { page: page + 1 }),
          [
            [t("member.when")],
            [t("member.type")],
            [t("member.points"), true],
            [t("member.balanceAfter"), true],
            [t("member.who")],
            [t("member.why")],
            [t("member.lotsTouched")],
          ],
          rows,
        )
      : el("p", {}, t("member.ledgerNone")),
    pager(context, page, Boolean(answer.nextCursor), go, "pager.newer", "pager.older"),
  );
}

/** `datetime-local` (the agent's clock) as RFC 3339 with the browser's offset. */
function instantFromLocal(value) {
  const moment = new Date(value);
  if (!value || Number.isNaN(moment.getTime())) return value;
  const offset = -moment.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  return `${value.length === 16 ? `${value}:00` : value}${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

function claimForm(context, memberId) {
  const field = (id, key, props = {}) => [
    el("label", { for: id }, t(key)),
    el("input", { id, name: id, autocomplete: "off", ...props }),
  ];
  // A live region from the start: a message put into a region that appears with it is not read out.
  const result = el("div", { id: "file-result", "aria-live": "polite" });
  const submit = el("button", { type: "submit" }, t("file.submit"));
  const form = el(
    "form",
    {
      class: "stacked",
      id: "file-claim",
      onsubmit: async (event) => {
        event.preventDefault();
        const value = (name) => form.elements[name].value.trim();
        const claim = {
          transactionId: value("file-transaction"),
          occurredAt: instantFromLocal(value("file-occurred")),
          amount: value("file-amount"),
          currency: value("file-currency").toUpperCase(),
        };
        if (value("file-store")) claim.store = value("file-store");
        if (value("file-receipt")) claim.receiptRef = value("file-receipt");
        submit.disabled = true;
        replace(result);
        try {
          const filed = await context.api.fileClaim(memberId, claim);
          const text = filed.status === "rejected" ? t("file.rejected", { reason: filed.reason }) : t("file.pending");
          replace(
            result,
            el("p", { class: filed.status === "rejected" ? "notice" : "status" }, text),
            el("a", { href: hashFor("claims", filed.claimId) }, t("file.open")),
          );
        } catch (error) {
          if (context.failed(error)) return;
          replace(result, el("p", { class: "alert", role: "alert" }, context.describe(error)));
        } finally {
          submit.disabled = false;
        }
      },
    },
    el(
      "fieldset",
      {},
      el("legend", {}, t("file.title")),
      field("file-transaction", "file.transactionId", { required: true }),
      field("file-occurred", "file.occurredAt", { type: "datetime-local", required: true }),
      field("file-amount", "file.amount", { required: true, inputmode: "decimal" }),
      field("file-currency", "file.currency", { required: true, value: "EUR", maxlength: 3 }),
      field("file-store", "file.store"),
      field("file-receipt", "file.receipt"),
      el("div", {}, submit),
    ),
    result,
  );
  return el("section", { "aria-label": t("file.title") }, form);
}
