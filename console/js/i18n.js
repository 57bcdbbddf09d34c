// Texts in English and French. The language follows the browser (navigator.languages) until the
// agent picks one with the switch; the choice lasts for the tab (sessionStorage).

const TEXTS = {
  en: {
    "app.title": "Support console",
    "app.pageTitle": "Loyalty support console",
    "app.skip": "Skip to content",
    "app.language": "Language",
    "app.signOut": "Sign out",
    "app.signedInAs": "Signed in as {who}",
    "app.loading": "Loading…",
    "nav.claims": "Claims queue",
    "nav.memberId": "Member id",
    "nav.find": "Find",
    "signin.title": "Sign in",
    "signin.local": "Local mode: pick a development identity (it stands in for Cognito; only support agents get in).",
    "signin.role": "Role",
    "signin.id": "Id",
    "signin.submit": "Sign in",
    "signin.cognito": "Sign in with your support account. Only members of the support group get in.",
    "signin.cognitoSubmit": "Sign in with Cognito",
    "signin.refused": "This identity is not a support agent: the console is for support only.",
    "signin.rejected": "The sign-in was not accepted ({message}).",
    "signin.ended": "Your session ended: sign in again.",
    "signin.failed": "Sign-in failed: {message}",
    "signin.stateMismatch": "Sign-in failed: this answer does not come from a sign-in started in this tab. Sign in again.",
    "signin.tokenRefused": "Sign-in failed: Cognito did not give a token for this sign-in ({message}). Sign in again.",
    "claims.title": "Pending claims",
    "claims.caption": "Pending claims, oldest first (page {page})",
    "claims.none": "No pending claim.",
    "claims.filed": "Filed",
    "claims.member": "Member",
    "claims.purchase": "Purchase",
    "claims.purchaseDate": "Purchase date",
    "claims.amount": "Amount",
    "claims.store": "Store",
    "claims.open": "Open claim {id}",
    "pager.first": "First page",
    "pager.previous": "Previous page",
    "pager.next": "Next page",
    "pager.newer": "Newer movements",
    "pager.older": "Older movements",
    "claim.title": "Claim for purchase {id}",
    "claim.status": "Status",
    "claim.reason": "Reason",
    "claim.receipt": "Receipt",
    "claim.filedBy": "Filed by",
    "claim.decidedBy": "Decided by",
    "claim.credit": "Credited",
    "claim.creditValue": "{points} points (balance after: {balance})",
    "claim.history": "History",
    "claim.when": "When",
    "claim.who": "Who",
    "claim.action": "Action",
    "claim.points": "Points",
    "claim.approve": "Approve",
    "claim.approvePoints": "Points to credit",
    "claim.suggested": "The rules suggest {points} points for this purchase.",
    "claim.noSuggestion": "The rules suggest no amount: enter the points.",
    "claim.approveReason": "Reason for the approval",
    "claim.reject": "Reject",
    "claim.rejectReason": "Reason for the rejection (shown to the member)",
    "claim.approved": "Claim approved: {points} points credited; the member's balance is now {balance}.",
    "claim.rejected": "Claim rejected.",
    "claim.conflict": "Another agent decided this claim first: it is now {status} (by {who}, {when}). Your decision was not applied.",
    "claim.notFound": "No claim {id}.",
    "claim.viewMember": "See member {id}",
    "status.pending": "pending",
    "status.approved": "approved",
    "status.rejected": "rejected",
    "status.matched": "matched by a purchase",
    "member.notFound": "No member with id {id}.",
    "member.profile": "Profile",
    "member.id": "Member id",
    "member.name": "Name",
    "member.email": "Email",
    "member.locale": "Language",
    "member.optIn": "Email opt-in",
    "member.enrolled": "Enrolled",
    "member.balance": "Balance",
    "member.available": "Available points",
    "member.owed": "Owed points",
    "member.expiring": "Upcoming expiries",
    "member.expiringNone": "No points expire.",
    "member.date": "Last day to use",
    "member.points": "Points",
    "member.lots": "Lots",
    "member.lotsNone": "No unexpired lot.",
    "member.lot": "Lot",
    "member.source": "Source",
    "member.original": "Original",
    "member.remaining": "Remaining",
    "member.earned": "Earned",
    "member.expires": "Expires",
    "member.never": "never",
    "member.ledger": "Ledger",
    "member.ledgerCaption": "Movements, newest first (page {page})",
    "member.ledgerNone": "No movement.",
    "member.when": "When",
    "member.type": "Movement",
    "member.balanceAfter": "Balance after",
    "member.who": "Who",
    "member.why": "Why",
    "member.lotsTouched": "Lots touched",
    "member.yes": "yes",
    "member.no": "no",
    "file.title": "File a claim for this member",
    "file.transactionId": "Purchase reference (transaction id)",
    "file.occurredAt": "Purchase date and time",
    "file.amount": "Amount",
    "file.currency": "Currency",
    "file.store": "Store (optional)",
    "file.receipt": "Receipt reference (optional)",
    "file.submit": "File the claim",
    "file.pending": "Claim filed: it waits in the queue.",
    "file.rejected": "Claim filed and rejected at once: {reason}",
    "file.open": "Open the claim",
    "error.network": "The API cannot be reached: {message}",
    "error.invalid": "Not accepted: {message}",
    "error.forbidden": "Not allowed: {message}",
    "error.generic": "The API answered {status}: {message}",
    "error.unreadable": "The API's answer could not be read ({message}). Try again, or report it.",
    "movement.earn": "purchase",
    "movement.redeem": "redemption",
    "movement.transfer-out": "transfer sent",
    "movement.transfer-in": "transfer received",
    "movement.claim-credit": "claim credited",
    "movement.reversal": "return",
    "movement.expiry": "expiry",
    "movement.adjustment": "adjustment",
    "source.earn": "purchase",
    "source.claim": "claim",
    "source.transfer": "transfer",
    "source.adjustment": "adjustment",
    "action.filed": "filed",
    "action.refiled": "filed again",
    "action.approved": "approved",
    "action.rejected": "rejected",
    "action.matched": "matched by a purchase",
  },
  fr: {
    "app.title": "Console du support",
    "app.pageTitle": "Console du support fidélité",
    "app.skip": "Aller au contenu",
    "app.language": "Langue",
    "app.signOut": "Se déconnecter",
    "app.signedInAs": "Connecté : {who}",
    "app.loading": "Chargement…",
    "nav.claims": "Réclamations",
    "nav.memberId": "Identifiant du membre",
    "nav.find": "Chercher",
    "signin.title": "Connexion",
    "signin.local": "Mode local : choisissez une identité de développement (elle tient lieu de Cognito ; seuls les agents du support entrent).",
    "signin.role": "Rôle",
    "signin.id": "Identifiant",
    "signin.submit": "Se connecter",
    "signin.cognito": "Connectez-vous avec votre compte support. Seuls les membres du groupe support entrent.",
    "signin.cognitoSubmit": "Se connecter avec Cognito",
    "signin.refused": "Cette identité n'est pas un agent du support : la console est réservée au support.",
    "signin.rejected": "La connexion a été refusée ({message}).",
    "signin.ended": "Votre session a pris fin : reconnectez-vous.",
    "signin.failed": "La connexion a échoué : {message}",
    "signin.stateMismatch": "La connexion a échoué : cette réponse ne vient pas d'une connexion commencée dans cet onglet. Reconnectez-vous.",
    "signin.tokenRefused": "La connexion a échoué : Cognito n'a pas donné de jeton pour cette connexion ({message}). Reconnectez-vous.",
    "claims.title": "Réclamations en attente",
    "claims.caption": "Réclamations en attente, les plus anciennes d'abord (page {page})",
    "claims.none": "Aucune réclamation en attente.",
    "claims.filed": "Déposée le",
    "claims.member": "Membre",
    "claims.purchase": "Achat",
    "claims.purchaseDate": "Date d'achat",
    "claims.amount": "Montant",
    "claims.store": "Magasin",
    "claims.open": "Ouvrir la réclamation {id}",
    "pager.first": "Première page",
    "pager.previous": "Page précédente",
    "pager.next": "Page suivante",
    "pager.newer": "Mouvements plus récents",
    "pager.older": "Mouvements plus anciens",
    "claim.title": "Réclamation pour l'achat {id}",
    "claim.status": "Statut",
    "claim.reason": "Motif",
    "claim.receipt": "Ticket",
    "claim.filedBy": "Déposée par",
    "claim.decidedBy": "Décidée par",
    "claim.credit": "Crédité",
    "claim.creditValue": "{points} points (solde après : {balance})",
    "claim.history": "Historique",
    "claim.when": "Quand",
    "claim.who": "Qui",
    "claim.action": "Action",
    "claim.points": "Points",
    "claim.approve": "Accepter",
    "claim.approvePoints": "Points à créditer",
    "claim.suggested": "Les règles proposent {points} points pour cet achat.",
    "claim.noSuggestion": "Les règles ne proposent aucun montant : saisissez les points.",
    "claim.approveReason": "Motif de l'acceptation",
    "claim.reject": "Refuser",
    "claim.rejectReason": "Motif du refus (montré au membre)",
    "claim.approved": "Réclamation acceptée : {points} points crédités ; le solde du membre est maintenant de {balance}.",
    "claim.rejected": "Réclamation refusée.",
    "claim.conflict": "Un autre agent a décidé cette réclamation avant vous : elle est maintenant {status} (par {who}, {when}). Votre décision n'a pas été appliquée.",
    "claim.notFound": "Aucune réclamation {id}.",
    "claim.viewMember": "Voir le membre {id}",
    "status.pending": "en attente",
    "status.approved": "acceptée",
    "status.rejected": "refusée",
    "status.matched": "rapprochée d'un achat",
    "member.notFound": "Aucun membre avec l'identifiant {id}.",
    "member.profile": "Profil",
    "member.id": "Identifiant",
    "member.name": "Nom",
    "member.email": "E-mail",
    "member.locale": "Langue",
    "member.optIn": "Accepte les e-mails",
    "member.enrolled": "Inscrit le",
    "member.balance": "Solde",
    "member.available": "Points disponibles",
    "member.owed": "Points dus",
    "member.expiring": "Prochaines expirations",
    "member.expiringNone": "Aucun point n'expire.",
    "member.date": "Dernier jour d'utilisation",
    "member.points": "Points",
    "member.lots": "Lots",
    "member.lotsNone": "Aucun lot en cours.",
    "member.lot": "Lot",
    "member.source": "Origine",
    "member.original": "Initial",
    "member.remaining": "Restant",
    "member.earned": "Acquis le",
    "member.expires": "Expire le",
    "member.never": "jamais",
    "member.ledger": "Relevé",
    "member.ledgerCaption": "Mouvements, les plus récents d'abord (page {page})",
    "member.ledgerNone": "Aucun mouvement.",
    "member.when": "Quand",
    "member.type": "Mouvement",
    "member.balanceAfter": "Solde après",
    "member.who": "Qui",
    "member.why": "Pourquoi",
    "member.lotsTouched": "Lots concernés",
    "member.yes": "oui",
    "member.no": "non",
    "file.title": "Déposer une réclamation pour ce membre",
    "file.transactionId": "Référence de l'achat (transaction)",
    "file.occurredAt": "Date et heure de l'achat",
    "file.amount": "Montant",
    "file.currency": "Devise",
    "file.store": "Magasin (facultatif)",
    "file.receipt": "Référence du ticket (facultatif)",
    "file.submit": "Déposer la réclamation",
    "file.pending": "Réclamation déposée : elle attend dans la file.",
    "file.rejected": "Réclamation déposée et refusée aussitôt : {reason}",
    "file.open": "Ouvrir la réclamation",
    "error.network": "L'API est injoignable : {message}",
    "error.invalid": "Refusé : {message}",
    "error.forbidden": "Non autorisé : {message}",
    "error.generic": "L'API a répondu {status} : {message}",
    "error.unreadable": "La réponse de l'API n'a pas pu être lue ({message}). Réessayez, ou signalez-le.",
    "movement.earn": "achat",
    "movement.redeem": "utilisation",
    "movement.transfer-out": "transfert envoyé",
    "movement.transfer-in": "transfert reçu",
    "movement.claim-credit": "réclamation créditée",
    "movement.reversal": "retour",
    "movement.expiry": "expiration",
    "movement.adjustment": "ajustement",
    "source.earn": "achat",
    "source.claim": "réclamation",
    "source.transfer": "transfert",
    "source.adjustment": "ajustement",
    "action.filed": "déposée",
    "action.refiled": "déposée à nouveau",
    "action.approved": "acceptée",
    "action.rejected": "refusée",
    "action.matched": "rapprochée d'un achat",
  },
};

export const LANGUAGES = Object.keys(TEXTS);
const CHOICE = "console.language";
let current = "en";

/** The browser's first preferred language we have, else English; a choice made in the tab wins. */
export function initialLanguage(preferred = navigator.languages || [navigator.language]) {
  const chosen = sessionStorage.getItem(CHOICE);
  if (LANGUAGES.includes(chosen)) return chosen;
  for (const tag of preferred) {
    const base = String(tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

export function setLanguage(language, { remember = false } = {}) {
  current = LANGUAGES.includes(language) ? language : "en";
  if (remember) sessionStorage.setItem(CHOICE, current);
  document.documentElement.lang = current;
  document.title = t("app.pageTitle");
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  return current;
}

export function language() {
  return current;
}

/** A value the API names (a movement type, a lot source, a claim action) in the current language;
 * one this page does not know yet is shown as the API wrote it. */
export function term(kind, value) {
  const key = `${kind}.${value}`;
  return key in TEXTS[current] ? TEXTS[current][key] : String(value);
}

/** The text of `key` in the current language, `{name}` replaced by `params.name` (as text). */
export function t(key, params = {}) {
  const text = TEXTS[current][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function formatPoints(points) {
  return new Intl.NumberFormat(current).format(points);
}

export function formatInstant(text) {
  if (!text) return "";
  const moment = new Date(text);
  if (Number.isNaN(moment.getTime())) return text;
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "short" }).format(moment);
}

/** A calendar day (`YYYY-MM-DD`), shown as that day whatever the browser's time zone. */
export function formatDay(text) {
  if (!text) return "";
  const moment = new Date(`${text}T12:00:00Z`);
  if (Number.isNaN(moment.getTime())) return text;
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeZone: "UTC" }).format(moment);
}
