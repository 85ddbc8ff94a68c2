// Types of eid-bridge.js (eid-agent bridge API v1). SPDX-License-Identifier: EUPL-1.2

export declare const DEFAULT_BASE_URL: "https://127.0.0.1:24180";
export declare const DEFAULT_TIMEOUT_MS: number;
export declare const LOCAL_NETWORK_PERMISSIONS: readonly string[];

/** Error codes of the agent (docs/bridge-openapi.json x-error-codes) and of this client. */
export type ErrorCode =
  | "host-not-allowed" | "origin-missing" | "origin-invalid" | "origin-insecure" | "origin-denied"
  | "unsupported-media-type" | "body-too-large" | "bad-request" | "nonce-invalid" | "not-found"
  | "method-not-allowed" | "consent-required" | "consent-denied" | "user-cancelled"
  | "prompt-unavailable" | "prompt-timeout" | "wrong-pin" | "invalid-pin-format" | "pin-blocked" | "rate-limited"
  | "queue-full" | "queue-timeout" | "operation-timeout" | "no-reader" | "no-card" | "card-removed"
  | "card-busy" | "unsupported-card" | "reader-removed" | "pcscd-not-running" | "access-denied"
  | "certificate-mismatch" | "not-supported" | "card-error" | "internal"
  // kiosk mode
  | "session-ended" | "origin-not-allowed" | "reader-not-found"
  // the client's own
  | "agent-not-running" | "local-network-permission-denied" | "client-timeout" | "invalid-response"
  | (string & {});

export interface ErrorDetails {
  code?: ErrorCode;
  remedy?: string;
  retryable?: boolean;
  retriesLeft?: number | null;
  retryAfterSeconds?: number | null;
  status?: number | null;
  session?: string | null;
  cause?: unknown;
}

export declare class EidBridgeError extends Error {
  constructor(message: string, details?: ErrorDetails);
  readonly code: ErrorCode;
  readonly remedy: string;
  readonly retryable: boolean;
  /** wrong-pin: tries left before the PIN blocks. */
  readonly retriesLeft: number | null;
  /** rate-limited: seconds to wait. */
  readonly retryAfterSeconds: number | null;
  /** HTTP status of the agent's answer; null when there was none. */
  readonly status: number | null;
  /** Kiosk mode: the card session the failed operation was bound to, when the agent says. */
  readonly session: string | null;
  /** The message and the remedy as one text to show a person (the agent writes both in plain words). */
  userMessage(): string;
}
/** Nothing answered: agent not installed/running, or its certificate not trusted. code "agent-not-running". */
export declare class AgentNotRunningError extends EidBridgeError {}
/** Local Network Access permission denied. code "local-network-permission-denied". */
export declare class LocalNetworkPermissionError extends EidBridgeError {}
/** code "user-cancelled" or "consent-denied". */
export declare class UserCancelledError extends EidBridgeError {}
/** code "pin-blocked". */
export declare class PinBlockedError extends EidBridgeError {}
/** code "card-removed" (kiosk mode: also an operation whose card session ended by removal). */
export declare class CardRemovedError extends EidBridgeError {}
/** code "session-ended": kiosk mode, the card session ended by the agent's idle timeout. */
export declare class SessionEndedError extends EidBridgeError {}
/** code "client-timeout", "operation-timeout", "queue-timeout" or "prompt-timeout". */
export declare class TimeoutError extends EidBridgeError {}
/** code "wrong-pin"; see retriesLeft. */
export declare class WrongPinError extends EidBridgeError {}
/** Any other code. */
export declare class AgentError extends EidBridgeError {}

export declare function errorFromResponse(status: number, body: unknown, baseUrl?: string): EidBridgeError;

export interface SseEvent {
  type: string;
  data: string;
  lastEventId: string;
}
export declare class SseParser {
  push(text: string): SseEvent[];
}

export type HashFunction = "SHA-256" | "SHA-384" | "SHA-512";
export type Bytes = string | ArrayBuffer | ArrayBufferView;

export interface Card {
  id: string;
  name: string;
}
export interface Reader {
  name: string;
  cardPresent: boolean;
  card: Card | null;
  /** Kiosk mode: the session of the card in this reader (null without a card). */
  session?: string | null;
  /** How the reader talks to cards. */
  interface?: "contact" | "contactless";
  /** Which stack the agent reaches the reader through. */
  transport?: "pcsc" | "nfc";
  /** True for a reader with its own PIN pad (the PIN is typed there). */
  pinpad?: boolean;
}
export interface Status {
  version: string;
  api: "v1";
  origin: { allowed: boolean };
  smartCardService?: boolean | null;
  /** The agent's kiosk mode (a service desk): its desk name and idle timeout; null otherwise. */
  kiosk?: { desk: string; idleTimeoutSecs: number } | null;
  /** null unless this site has the user's (or the administrator's) consent. */
  readers: Reader[] | null;
}

export interface SignatureAlgorithm {
  cryptoAlgorithm: "ECC" | "RSA";
  hashFunction: HashFunction;
  paddingScheme: "NONE" | "PKCS1.5" | "PSS";
}
export interface CertificateResult {
  /** DER, base64. */
  certificate: string;
  supportedSignatureAlgorithms: SignatureAlgorithm[];
}

/** Web eID authentication token (format web-eid:1.0). Validate it on your server. */
export interface AuthToken {
  unverifiedCertificate: string;
  algorithm: "ES256" | "ES384" | "ES512" | "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512";
  signature: string;
  format: string;
  appVersion: string;
}

export interface SignResult {
  signature: string;
  signatureAlgorithm: SignatureAlgorithm;
}

export interface Check {
  result: "passed" | "failed" | "not-performed";
  reason?: string;
}

export interface IdentityResult {
  /** Field names as in docs/bridge-openapi.json (Identity). */
  identity: Record<string, unknown>;
  /** PNG, base64. */
  photo: string | null;
  address: Record<string, string> | null;
  sod: { integrity: Check; chain: Check };
}

export interface EmrtdResult {
  format: "eid-emrtd:1.0";
  appVersion: string;
  access: { method: "pace" | "bac"; detail: string };
  sod: string;
  dataGroups: Record<string, string>;
  cardSecurity: string | null;
  activeAuthentication: { challenge: string; signature: string } | null;
  checks: { passive: Check; chip: Check; active: Check };
  document: {
    documentCode: string; issuingState: string; documentNumber: string; surname: string;
    givenNames: string; nationality: string; birthDate: string; sex: string; expiryDate: string;
  } | null;
}

export interface CallOptions {
  /** Aborts the call (the error is the signal's reason). */
  signal?: AbortSignal;
  /** Overrides the client's timeoutMs for this call. */
  timeoutMs?: number;
  /** Card operations: the reader to use (its exact name, as in status().readers). */
  reader?: string;
  /** Card operations, kiosk mode: the card session the operation must run in. */
  session?: string;
}

/** Kiosk mode: results carry the session of the card they came from. */
export interface InSession {
  session?: string;
}

export interface EidBridgeOptions {
  baseUrl?: string;
  timeoutMs?: number;
  /** A fetch implementation (tests). */
  fetch?: typeof fetch;
  /** A Permissions object (tests); default navigator.permissions. */
  permissions?: Pick<Permissions, "query">;
}

export interface BridgeEvent {
  type:
    | "status" | "card-inserted" | "card-removed" | "reader-added" | "reader-removed" | "session-ended"
    | (string & {});
  /** The event's JSON data (the raw text when it is not JSON). */
  data: any;
}

export interface CloseEvents {
  (): void;
  /** Settles when the stream has ended (after close, an error, or the agent closing it). */
  readonly done: Promise<void>;
}

export type SessionEndReason =
  | "card-removed" | "idle-timeout" | "reader-removed" | "agent-stopping"
  /** Gone when the event stream reopened (it ended while the page was not connected). */
  | "missed"
  | (string & {});

export interface SessionStarted {
  reader: string;
  session: string;
  card: Card | null;
}
export interface SessionEnded {
  reader: string;
  session: string;
  reason: SessionEndReason;
}

export interface FollowSessionsOptions {
  onSessionStarted?: (started: SessionStarted) => void;
  onSessionEnded?: (ended: SessionEnded) => void;
  onEvent?: (event: BridgeEvent) => void;
  /** Every failure of the stream; it is reopened after retryable ones. */
  onError?: (error: EidBridgeError | unknown) => void;
  /** First wait before reopening the stream (default 1000 ms), doubled up to maxRetryMs. */
  retryMs?: number;
  /** Longest wait before reopening (default 30 000 ms). */
  maxRetryMs?: number;
}

export interface StopFollowing {
  (): void;
  /** Settles once it stopped (stop() or a refusal that waiting does not change). */
  readonly done: Promise<void>;
  /** The open sessions it knows. */
  sessions(): Array<{ reader: string; session: string }>;
}

export declare class EidBridge {
  constructor(options?: EidBridgeOptions);
  readonly baseUrl: string;
  timeoutMs: number;
  status(options?: CallOptions): Promise<Status>;
  getAuthenticationCertificate(options?: CallOptions): Promise<CertificateResult & InSession>;
  getSigningCertificate(options?: CallOptions): Promise<CertificateResult & InSession>;
  authenticate(challengeNonce: string, options?: CallOptions): Promise<AuthToken & InSession>;
  sign(certificate: Bytes, hash: Bytes, hashFunction: HashFunction, options?: CallOptions): Promise<SignResult & InSession>;
  readIdentity(request?: { fields?: string[]; photo?: boolean; address?: boolean }, options?: CallOptions): Promise<IdentityResult & InSession>;
  readEmrtd(
    request: ({ can: string; mrz?: never } | { mrz: string; can?: never }) & { dataGroups?: number[]; challengeNonce: string },
    options?: CallOptions,
  ): Promise<EmrtdResult & InSession>;
  events(onEvent: (event: BridgeEvent) => void, options?: { onError?: (error: EidBridgeError | unknown) => void }): CloseEvents;
  /** Kiosk mode: follows the card sessions over events(), reopening the stream after it is lost. */
  followSessions(options?: FollowSessionsOptions): StopFollowing;
  /** followSessions with `callback` as onSessionEnded. */
  onSessionEnded(callback: (ended: SessionEnded) => void, options?: Omit<FollowSessionsOptions, "onSessionEnded">): StopFollowing;
  /** "granted" | "denied" | "prompt", or null when the browser has no Local Network Access permission. */
  localNetworkPermission(): Promise<PermissionState | null>;
}
