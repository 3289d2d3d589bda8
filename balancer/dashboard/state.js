// What the page knows, shared by its modules: the balancer's view of the servers, what the
// launcher says, and this page's own credential and answers.
import { noAnswers } from './answers.js'

export const state = {
  strategy: '?',
  stickyCookie: 'lb',
  mode: null,
  /** url -> the balancer's view of the upstream, `answers` included (its totals since it started) */
  upstreams: new Map(),
  /** url -> { el, parts, base, flashTimer }: a card shows its upstream's answers since `base` */
  cards: new Map(),
  /** name -> { name, upstreams }: the balancer's other pools (ROUTES), the issuer's among them */
  pools: new Map(),
  /** url -> where "Reset counts" left a pool upstream's answers */
  poolBases: new Map(),
  /** the balancer's ROUTES: [{ prefix, pool }] */
  routes: [],
  /** the kids the issuer's JWKS publishes (null: no issuer, or not read yet) */
  jwksKids: null,
  /** the balancer's own answers (no upstream to count them for), and where the page counts them from */
  ownAnswers: noAnswers(),
  ownBase: noAnswers(),
  /** when the balancer this page listens to started: another one means counting afresh */
  startedAt: undefined,
  /** what the launcher says (null when the balancer runs without one) */
  cluster: null,
  control: { enabled: false, reason: '' },
  /** requests listed or tallied since the page opened (or was reset) */
  seen: 0,
  /** the answers this page got to its own requests, by class, since it opened (or was reset) */
  tally: noAnswers(),
  credential: null,
  busy: false
}
