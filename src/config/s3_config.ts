/**
 * `s3` replica settings, as Litestream v0.5 reads them: the URL
 * `s3://bucket/path?endpoint=…&region=…&forcePathStyle=true` (or a provider's
 * host form such as `s3://bucket.nyc3.digitaloceanspaces.com/path`), and the
 * keys `bucket`, `path`, `region`, `endpoint`, `force-path-style`,
 * `access-key-id`, `secret-access-key`, `skip-verify`, `storage-class`,
 * `part-size`, `concurrency`, `require-content-md5`. Keys win over the URL;
 * known providers (recognised from the endpoint's host) get their defaults
 * unless the user set them.
 */

import { createHash } from "node:crypto";
import { ReplicaUrlError } from "./replica_error.ts";

export interface S3ReplicaConfig {
  type: "s3";
  bucket: string;
  /** Key prefix, no leading or trailing slash ("" = bucket root). */
  path: string;
  region?: string;
  /** `http(s)://host[:port][/path]`; none for AWS. */
  endpoint?: string;
  forcePathStyle: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  skipVerify: boolean;
  storageClass?: string;
  partSize?: number;
  concurrency?: number;
  requireContentMD5: boolean;
  /** The S3-compatible provider recognised from the endpoint, if any. */
  provider?: S3Provider;
  /** Server-side encryption, as Litestream's `sse-*` settings ask for it. */
  sse?: S3Encryption;
  name?: string;
  syncIntervalMs?: number;
}

/**
 * Server-side encryption: with a key of the customer's (SSE-C: AES256, the
 * 32-byte key base64-encoded, sent with every write and read), or with a KMS
 * key (SSE-KMS, sent with writes). Never both.
 */
export type S3Encryption =
  | { customerAlgorithm: "AES256"; customerKey: string; customerKeyMD5: string }
  | { kmsKeyId: string };

export type S3Provider =
  | "aws"
  | "backblaze-b2"
  | "digitalocean-spaces"
  | "cloudflare-r2"
  | "tigris"
  | "scaleway"
  | "filebase"
  | "hetzner"
  | "supabase"
  | "minio";

/** Replica keys this module reads (besides the common `type`, `url`, `path`, `name`, `sync-interval`). */
export const S3_KEYS = [
  "bucket",
  "region",
  "endpoint",
  "force-path-style",
  "access-key-id",
  "secret-access-key",
  "skip-verify",
  "storage-class",
  "part-size",
  "concurrency",
  "require-content-md5",
  "sse-customer-algorithm",
  "sse-customer-key",
  "sse-customer-key-path",
  "sse-kms-key-id",
];

/** A bad s3 setting; `key` names the config key when the setting came from one. */
export class S3SettingError extends Error {
  readonly key?: string;
  constructor(message: string, key?: string) {
    super(message);
    this.name = "S3SettingError";
    this.key = key;
  }
}

const MIB = 1024 * 1024;
export const MIN_PART_SIZE = 5 * MIB;
export const MAX_PART_SIZE = 5 * 1024 * MIB;
/** Cloudflare R2 limits concurrent multipart uploads (Litestream uses 2). */
export const R2_CONCURRENCY = 2;

/** Host (with port) of an endpoint URL or bare `host[:port]`, lowercased; "" if none. */
export function endpointHost(endpoint: string): string {
  const e = endpoint.trim().toLowerCase();
  if (!e) return "";
  if (/^https?:\/\//.test(e)) {
    try {
      const u = new URL(e);
      return u.username || u.password ? "" : u.host;
    } catch {
      return "";
    }
  }
  return e.split("/")[0];
}

/** The provider an endpoint belongs to, by host, as Litestream recognises them. */
export function detectProvider(endpoint: string | undefined): S3Provider | undefined {
  if (!endpoint) return "aws";
  const host = endpointHost(endpoint);
  if (!host) return undefined;
  const name = host.replace(/:\d+$/, "");
  if (name.endsWith(".your-objectstorage.com")) return "hetzner";
  if (name === "fly.storage.tigris.dev" || name === "t3.storage.dev") return "tigris";
  if (name.endsWith(".digitaloceanspaces.com")) return "digitalocean-spaces";
  if (name.endsWith(".backblazeb2.com")) return "backblaze-b2";
  if (name === "s3.filebase.com") return "filebase";
  if (name.endsWith(".scw.cloud")) return "scaleway";
  if (name.endsWith(".r2.cloudflarestorage.com")) return "cloudflare-r2";
  if (name.endsWith(".supabase.co")) return "supabase";
  if (name.endsWith(".amazonaws.com")) return "aws";
  if (host.includes(":")) return "minio"; // a custom host:port
  return undefined;
}

/** Loopback, private-range and `.local` hosts: endpoints given without a scheme get http://. */
export function isLocalHost(host: string): boolean {
  const h = host.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\./.test(h) || /^10\./.test(h) ||
    /^192\.168\./.test(h) || /^172\.(1[6-9]|2\d|3[01])\./.test(h) || h.endsWith(".local") ||
    h.endsWith(".localhost");
}

/**
 * Checks an endpoint and gives it a scheme when it has none (http:// for local
 * hosts, https:// otherwise, as Litestream). Returns it without a trailing slash.
 */
export function normalizeEndpoint(endpoint: string): string {
  let e = endpoint.trim();
  if (!e) throw new S3SettingError(`endpoint is empty`);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(e)) {
    e = (isLocalHost(e.split("/")[0]) ? "http://" : "https://") + e;
  }
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    throw new S3SettingError(`endpoint ${JSON.stringify(endpoint)} is not a valid URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new S3SettingError(`endpoint ${JSON.stringify(endpoint)} must be http:// or https://`);
  }
  if (!u.hostname) throw new S3SettingError(`endpoint ${JSON.stringify(endpoint)} has no host`);
  if (u.username || u.password) {
    throw new S3SettingError(
      `endpoint ${
        JSON.stringify(endpoint)
      } must not contain credentials; use access-key-id/secret-access-key`,
    );
  }
  if (u.search || u.hash) {
    throw new S3SettingError(`endpoint ${JSON.stringify(endpoint)} takes no query or fragment`);
  }
  return (u.origin + u.pathname).replace(/\/+$/, "");
}

/** `a//b/./c/` → `a/b/c` (no leading or trailing slash). */
export function cleanKeyPrefix(p: string): string {
  const parts: string[] = [];
  for (const s of p.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") parts.pop();
    else parts.push(s);
  }
  return parts.join("/");
}

export function parseBool(v: string, what: string, key?: string): boolean {
  switch (v.trim().toLowerCase()) {
    case "true":
    case "1":
    case "t":
    case "yes":
      return true;
    case "false":
    case "0":
    case "f":
    case "no":
      return false;
  }
  throw new S3SettingError(`${what} must be true or false, got ${JSON.stringify(v)}`, key);
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: MIB,
  gb: 1000 ** 3,
  gib: 1024 * MIB,
};

/** A part size in bytes: `8388608`, `8MiB`, `10MB`; 5 MiB to 5 GiB. */
export function parsePartSize(v: string, what: string, key?: string): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(v);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new S3SettingError(
      `${what} must be a size in bytes (e.g. 8388608 or 8MiB), got ${JSON.stringify(v)}`,
      key,
    );
  }
  const n = Number(m[1]) * unit;
  if (n < MIN_PART_SIZE || n > MAX_PART_SIZE) {
    throw new S3SettingError(
      `${what} must be between 5MiB (5242880) and 5GiB, got ${JSON.stringify(v)}`,
      key,
    );
  }
  return n;
}

export function parseConcurrency(v: string, what: string, key?: string): number {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new S3SettingError(
      `${what} must be an integer from 1 to 1000, got ${JSON.stringify(v)}`,
      key,
    );
  }
  return n;
}

function checkBucket(bucket: string, key?: string): string {
  if (!bucket) {
    throw new S3SettingError('bucket required (s3://BUCKET/path or the "bucket" key)', key);
  }
  if (/[\s/?#\\]/.test(bucket) && !bucket.startsWith("arn:")) {
    throw new S3SettingError(`bucket ${JSON.stringify(bucket)} is not a valid bucket name`, key);
  }
  return bucket;
}

function checkStorageClass(v: string, what: string, key?: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(v)) {
    throw new S3SettingError(
      `${what} ${JSON.stringify(v)} is not a storage class (e.g. STANDARD_IA)`,
      key,
    );
  }
  return v.toUpperCase();
}

/** What a URL says; fields left undefined were not given. */
interface S3Parts {
  bucket: string;
  path: string;
  region?: string;
  endpoint?: string;
  /** Set by the query, or implied by the host form. */
  forcePathStyle?: boolean;
  forcePathStyleExplicit: boolean;
  skipVerify?: boolean;
  storageClass?: string;
  partSize?: number;
  concurrency?: number;
  requireContentMD5?: boolean;
  sseCustomerAlgorithm?: string;
  sseCustomerKey?: string;
  sseKmsKeyId?: string;
}

/** Provider host forms: bucket, region, endpoint and path style from `s3://HOST/…`, as Litestream's ParseHost. */
function parseS3Host(host: string): Omit<S3Parts, "path" | "forcePathStyleExplicit"> {
  const h = host.toLowerCase();
  // MinIO style: bucket.host:port (no ".com")
  if (h.includes(":") && !h.includes(".com")) {
    const dot = host.indexOf(".");
    const name = h.replace(/:\d*$/, "");
    const bare = /^\d+\.\d+\.\d+\.\d+$/.test(name) || name === "localhost";
    if (dot > 0 && !bare) {
      return {
        bucket: host.slice(0, dot),
        region: "us-east-1",
        endpoint: "http://" + host.slice(dot + 1),
        forcePathStyle: true,
      };
    }
    return { bucket: "", endpoint: "http://" + host, forcePathStyle: true };
  }
  let m = /^(.+)\.s3(?:[.-]([^.]+))?\.amazonaws\.com$/i.exec(host);
  if (m) return { bucket: m[1], region: m[2] };
  m = /^(?:(.+)\.)?([^.]+)\.digitaloceanspaces\.com$/i.exec(host);
  if (m) {
    return {
      bucket: m[1] ?? "",
      region: m[2],
      endpoint: `https://${m[2]}.digitaloceanspaces.com`,
      forcePathStyle: false,
    };
  }
  m = /^(?:(.+)\.)?s3\.([^.]+)\.backblazeb2\.com$/i.exec(host);
  if (m) {
    return {
      bucket: m[1] ?? "",
      region: m[2],
      endpoint: `https://s3.${m[2]}.backblazeb2.com`,
      forcePathStyle: true,
    };
  }
  m = /^(?:(.+)\.)?s3\.filebase\.com$/i.exec(host);
  if (m) return { bucket: m[1] ?? "", endpoint: "https://s3.filebase.com", forcePathStyle: false };
  m = /^(?:(.+)\.)?s3\.([^.]+)\.scw\.cloud$/i.exec(host);
  if (m) {
    return {
      bucket: m[1] ?? "",
      region: m[2],
      endpoint: `https://s3.${m[2]}.scw.cloud`,
      forcePathStyle: false,
    };
  }
  return { bucket: host };
}

const QUERY_KEYS: Record<string, string> = {
  endpoint: "endpoint",
  region: "region",
  forcePathStyle: "force-path-style",
  "force-path-style": "force-path-style",
  skipVerify: "skip-verify",
  "skip-verify": "skip-verify",
  storageClass: "storage-class",
  "storage-class": "storage-class",
  partSize: "part-size",
  "part-size": "part-size",
  concurrency: "concurrency",
  requireContentMD5: "require-content-md5",
  "require-content-md5": "require-content-md5",
  sseCustomerAlgorithm: "sse-customer-algorithm",
  "sse-customer-algorithm": "sse-customer-algorithm",
  sseCustomerKey: "sse-customer-key",
  "sse-customer-key": "sse-customer-key",
  sseKmsKeyId: "sse-kms-key-id",
  "sse-kms-key-id": "sse-kms-key-id",
};

function parseS3Parts(url: string): S3Parts {
  const fail = (reason: string): never => {
    throw new ReplicaUrlError(url, reason);
  };
  const m = /^s3:\/\/([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url.trim());
  if (!m) fail("expected s3://bucket/path");
  if (m![3]) fail("s3 URLs take no fragment");
  let hostAndPath = m![1];
  let host: string;
  let rawPath: string;
  if (/^arn:/i.test(hostAndPath)) {
    // an access point ARN: arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME[/path]
    const i = hostAndPath.toLowerCase().indexOf(":accesspoint/");
    if (i < 0) fail("an ARN bucket must be an S3 access point (arn:…:accesspoint/NAME)");
    const slash = hostAndPath.indexOf("/", i + ":accesspoint/".length);
    host = slash < 0 ? hostAndPath : hostAndPath.slice(0, slash);
    rawPath = slash < 0 ? "" : hostAndPath.slice(slash);
  } else {
    if (hostAndPath.includes("@")) {
      fail("s3 URLs take no credentials; use access-key-id/secret-access-key or the environment");
    }
    const slash = hostAndPath.indexOf("/");
    host = slash < 0 ? hostAndPath : hostAndPath.slice(0, slash);
    rawPath = slash < 0 ? "" : hostAndPath.slice(slash);
    hostAndPath = host;
  }
  let path: string;
  try {
    path = cleanKeyPrefix(decodeURIComponent(rawPath));
  } catch {
    return fail("bad percent-encoding in the path");
  }
  const parts: S3Parts = {
    path,
    forcePathStyleExplicit: false,
    ...(/^arn:/i.test(host)
      ? { bucket: host, region: host.split(":")[3] || undefined }
      : parseS3Host(host)),
  };
  const query = new URLSearchParams(m![2]?.slice(1) ?? "");
  const seen = new Set<string>();
  for (const [k, v] of query) {
    const name = QUERY_KEYS[k];
    if (!name) {
      fail(
        `unknown query parameter "${k}" (known: endpoint, region, forcePathStyle, skipVerify, storageClass, partSize, concurrency, requireContentMD5, sseCustomerAlgorithm, sseCustomerKey, sseKmsKeyId)`,
      );
    }
    if (seen.has(name)) fail(`query parameter "${k}" given twice`);
    seen.add(name);
    try {
      switch (name) {
        case "endpoint":
          parts.endpoint = normalizeEndpoint(v);
          break;
        case "region":
          if (!v) fail("region is empty");
          parts.region = v;
          break;
        case "force-path-style":
          parts.forcePathStyle = parseBool(v, k);
          parts.forcePathStyleExplicit = true;
          break;
        case "skip-verify":
          parts.skipVerify = parseBool(v, k);
          break;
        case "storage-class":
          parts.storageClass = checkStorageClass(v, k);
          break;
        case "part-size":
          parts.partSize = parsePartSize(v, k);
          break;
        case "concurrency":
          parts.concurrency = parseConcurrency(v, k);
          break;
        case "require-content-md5":
          parts.requireContentMD5 = parseBool(v, k);
          break;
        case "sse-customer-algorithm":
          parts.sseCustomerAlgorithm = v;
          break;
        case "sse-customer-key":
          parts.sseCustomerKey = v;
          break;
        case "sse-kms-key-id":
          parts.sseKmsKeyId = v;
          break;
      }
    } catch (e) {
      if (e instanceof S3SettingError) fail(e.message);
      throw e;
    }
  }
  // an endpoint given in the query means path style unless it says otherwise (Litestream)
  if (seen.has("endpoint") && !parts.forcePathStyleExplicit) parts.forcePathStyle = true;
  if (!parts.bucket) {
    fail(
      parts.endpoint
        ? `no bucket: write s3://BUCKET/path?endpoint=${parts.endpoint}`
        : "no bucket (s3://BUCKET/path)",
    );
  }
  try {
    checkBucket(parts.bucket);
  } catch (e) {
    fail((e as Error).message);
  }
  return parts;
}

/** Defaults that depend on the provider; settings the user made are kept. */
function finish(
  p: S3Parts & { accessKeyId?: string; secretAccessKey?: string },
): S3ReplicaConfig {
  const provider = detectProvider(p.endpoint);
  let forcePathStyle = p.forcePathStyle ?? (p.endpoint !== undefined);
  if (
    !p.forcePathStyleExplicit &&
    (provider === "filebase" || provider === "backblaze-b2" || provider === "minio" ||
      provider === "supabase")
  ) {
    forcePathStyle = true; // these stores need path-style requests
  }
  const cfg: S3ReplicaConfig = {
    type: "s3",
    bucket: p.bucket,
    path: p.path,
    forcePathStyle,
    skipVerify: p.skipVerify ?? false,
    requireContentMD5: p.requireContentMD5 ?? (provider !== "tigris"),
  };
  if (p.region) cfg.region = p.region;
  if (p.endpoint) cfg.endpoint = p.endpoint;
  if (provider) cfg.provider = provider;
  if (p.accessKeyId) cfg.accessKeyId = p.accessKeyId;
  if (p.secretAccessKey) cfg.secretAccessKey = p.secretAccessKey;
  if (p.storageClass) cfg.storageClass = p.storageClass;
  if (p.partSize !== undefined) cfg.partSize = p.partSize;
  const concurrency = p.concurrency ?? (provider === "cloudflare-r2" ? R2_CONCURRENCY : undefined);
  if (concurrency !== undefined) cfg.concurrency = concurrency;
  const sse = encryptionOf(p);
  if (sse) cfg.sse = sse;
  return cfg;
}

/** The `sse-*` settings checked as Litestream checks them; null when none is set. */
function encryptionOf(p: S3Parts): S3Encryption | null {
  const { sseCustomerAlgorithm: alg, sseCustomerKey: key, sseKmsKeyId: kms } = p;
  if (key !== undefined && kms !== undefined) {
    throw new S3SettingError(
      `"sse-customer-key" and "sse-kms-key-id" exclude each other`,
      "sse-kms-key-id",
    );
  }
  if (kms !== undefined) {
    if (!kms) throw new S3SettingError(`"sse-kms-key-id" is empty`, "sse-kms-key-id");
    if (alg !== undefined) {
      throw new S3SettingError(
        `"sse-customer-algorithm" goes with "sse-customer-key"`,
        "sse-customer-algorithm",
      );
    }
    return { kmsKeyId: kms };
  }
  if (key === undefined) {
    if (alg !== undefined) {
      throw new S3SettingError(
        `"sse-customer-algorithm" needs "sse-customer-key"`,
        "sse-customer-algorithm",
      );
    }
    return null;
  }
  if ((alg ?? "AES256") !== "AES256") {
    throw new S3SettingError(
      `"sse-customer-algorithm" must be AES256, got ${JSON.stringify(alg)}`,
      "sse-customer-algorithm",
    );
  }
  let raw: Uint8Array;
  try {
    raw = Uint8Array.from(atob(key.trim()), (c) => c.charCodeAt(0));
  } catch {
    throw new S3SettingError(`"sse-customer-key" is not base64`, "sse-customer-key");
  }
  if (raw.length !== 32) {
    throw new S3SettingError(
      `"sse-customer-key" must be a 256-bit key (32 bytes, base64-encoded), got ${raw.length} bytes`,
      "sse-customer-key",
    );
  }
  const md5 = createHash("md5").update(raw).digest("base64");
  return {
    customerAlgorithm: "AES256",
    customerKey: btoa(String.fromCharCode(...raw)),
    customerKeyMD5: md5,
  };
}

/** Parses an `s3://` replica URL. Throws ReplicaUrlError. */
export function parseS3Url(url: string): S3ReplicaConfig {
  try {
    return finish(parseS3Parts(url));
  } catch (e) {
    if (e instanceof S3SettingError) throw new ReplicaUrlError(url, e.message);
    throw e;
  }
}

/**
 * Applies a config entry's s3 keys on top of its URL (if any), as Litestream:
 * `url` with `bucket` or `path` is an error; other keys override the URL.
 * `get(key)` returns a key's string value or undefined. Throws S3SettingError
 * (with the key) or ReplicaUrlError.
 */
export function s3ConfigFromKeys(
  url: string | undefined,
  get: (key: string) => string | undefined,
): S3ReplicaConfig {
  if (url && get("bucket") !== undefined) {
    throw new S3SettingError(`use "url" or "bucket", not both`, "bucket");
  }
  if (url && get("path") !== undefined) {
    throw new S3SettingError(`use "url" or "path", not both`, "path");
  }
  let p: S3Parts & { accessKeyId?: string; secretAccessKey?: string };
  if (url) {
    if (!/^s3:\/\//i.test(url)) {
      throw new S3SettingError(`an s3 replica's url must be s3://…`, "url");
    }
    p = parseS3Parts(url);
  } else {
    p = {
      bucket: checkBucket(get("bucket") ?? "", "bucket"),
      path: cleanKeyPrefix(get("path") ?? ""),
      forcePathStyleExplicit: false,
    };
  }
  const endpoint = get("endpoint");
  if (endpoint !== undefined) {
    try {
      p.endpoint = normalizeEndpoint(endpoint);
    } catch (e) {
      throw new S3SettingError((e as Error).message, "endpoint");
    }
    // a configured endpoint means path style unless force-path-style says otherwise
    if (!p.forcePathStyleExplicit) p.forcePathStyle = true;
  }
  const region = get("region");
  if (region !== undefined) {
    if (!region) throw new S3SettingError(`"region" is empty`, "region");
    p.region = region;
  }
  const fps = get("force-path-style");
  if (fps !== undefined) {
    p.forcePathStyle = parseBool(fps, `"force-path-style"`, "force-path-style");
    p.forcePathStyleExplicit = true;
  }
  const sv = get("skip-verify");
  if (sv !== undefined) p.skipVerify = parseBool(sv, `"skip-verify"`, "skip-verify");
  const sc = get("storage-class");
  if (sc !== undefined) p.storageClass = checkStorageClass(sc, `"storage-class"`, "storage-class");
  const ps = get("part-size");
  if (ps !== undefined) p.partSize = parsePartSize(ps, `"part-size"`, "part-size");
  const cc = get("concurrency");
  if (cc !== undefined) p.concurrency = parseConcurrency(cc, `"concurrency"`, "concurrency");
  const md5 = get("require-content-md5");
  if (md5 !== undefined) {
    p.requireContentMD5 = parseBool(md5, `"require-content-md5"`, "require-content-md5");
  }
  const keyId = get("access-key-id");
  const secret = get("secret-access-key");
  if ((keyId === undefined) !== (secret === undefined)) {
    const missing = keyId === undefined ? "access-key-id" : "secret-access-key";
    const given = keyId === undefined ? "secret-access-key" : "access-key-id";
    throw new S3SettingError(`"${given}" needs "${missing}" too`, given);
  }
  if (keyId !== undefined) {
    if (!keyId) throw new S3SettingError(`"access-key-id" is empty`, "access-key-id");
    if (!secret) throw new S3SettingError(`"secret-access-key" is empty`, "secret-access-key");
    p.accessKeyId = keyId;
    p.secretAccessKey = secret;
  }
  const sseKey = get("sse-customer-key");
  const sseKeyPath = get("sse-customer-key-path");
  if (sseKey !== undefined && sseKeyPath !== undefined) {
    throw new S3SettingError(
      `use "sse-customer-key" or "sse-customer-key-path", not both`,
      "sse-customer-key-path",
    );
  }
  if (sseKeyPath !== undefined) {
    try {
      p.sseCustomerKey = Deno.readTextFileSync(sseKeyPath).trim();
    } catch (e) {
      throw new S3SettingError(
        `"sse-customer-key-path" ${sseKeyPath}: ${(e as Error).message}`,
        "sse-customer-key-path",
      );
    }
  } else if (sseKey !== undefined) p.sseCustomerKey = sseKey;
  const alg = get("sse-customer-algorithm");
  if (alg !== undefined) p.sseCustomerAlgorithm = alg;
  const kms = get("sse-kms-key-id");
  if (kms !== undefined) p.sseKmsKeyId = kms;
  return finish(p);
}

/** The options an S3ReplicaClient takes from a replica config. */
export function s3ClientOptions(c: S3ReplicaConfig) {
  return {
    bucket: c.bucket,
    path: c.path,
    region: c.region,
    endpoint: c.endpoint,
    forcePathStyle: c.forcePathStyle,
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    skipVerify: c.skipVerify,
    storageClass: c.storageClass,
    partSize: c.partSize,
    concurrency: c.concurrency,
    requireContentMD5: c.requireContentMD5,
    sse: c.sse,
  };
}

const COMMON_KEYS = new Set([
  "type",
  "url",
  "path",
  "name",
  "sync-interval",
  "validation-interval",
  "format",
  "age",
  "retention",
]);

/**
 * The settings of a config replica entry when it is an s3 one (its `url` is
 * `s3://…`, or `type` is s3); null otherwise. `present` lists the entry's keys:
 * one that s3 replicas do not take is an error.
 */
export function s3ReplicaConfig(
  url: string | undefined,
  type: string | undefined,
  get: (key: string) => string | undefined,
  present: Iterable<string> = [],
): S3ReplicaConfig | null {
  const isOss = url ? /^oss:\/\//i.test(url) : type === "oss";
  const isS3 = isOss || (url ? /^s3:\/\//i.test(url) : type === "s3");
  if (!isS3) return null;
  for (const k of present) {
    if (!COMMON_KEYS.has(k) && !S3_KEYS.includes(k)) {
      throw new S3SettingError(`key "${k}" does not apply to s3 replicas`, k);
    }
  }
  if (!isOss) return s3ConfigFromKeys(url, get);
  // Alibaba OSS through its S3-compatible API, laid out as Litestream's oss replicas
  const oss = url ? ossUrlParts(url) : { bucket: get("bucket"), region: get("region") };
  const region = get("region") ?? oss.region ?? OSS_DEFAULT_REGION;
  const s3Url = url
    ? `s3://${oss.bucket}/${encodeURI((ossUrlParts(url).path ?? "").replace(/^\/+/, ""))}`
    : undefined;
  const cfg = s3ConfigFromKeys(s3Url, (k) => {
    if (k === "region") return region;
    if (k === "endpoint") return get("endpoint") ?? `https://oss-${region}.aliyuncs.com`;
    if (k === "force-path-style") return get(k) ?? "false"; // OSS serves virtual-hosted buckets only
    return k === "bucket" && url ? undefined : get(k);
  });
  return cfg;
}

/** Litestream's default OSS region. */
const OSS_DEFAULT_REGION = "cn-hangzhou";

/**
 * `oss://BUCKET[.oss-REGION[-internal].aliyuncs.com]/PATH`, as Litestream
 * reads it: the bucket, the region when the host names one, the path.
 */
export function ossUrlParts(url: string): { bucket: string; region?: string; path?: string } {
  const m = /^oss:\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(url.trim());
  if (!m) throw new ReplicaUrlError(url, "expected oss://bucket[.oss-region.aliyuncs.com]/path");
  const host = m[1].toLowerCase();
  const h = /^(?:([^.]+)\.)?oss-(.+?)(?:-internal)?\.aliyuncs\.com$/.exec(host);
  if (h) {
    if (!h[1]) throw new ReplicaUrlError(url, "no bucket before the OSS host");
    return { bucket: h[1], region: h[2], path: m[2] };
  }
  return { bucket: host, path: m[2] };
}
