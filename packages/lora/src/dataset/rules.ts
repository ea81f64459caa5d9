// What the dataset builder leaves out and why: every rule is a table here, so the filters a
// manifest reports are the ones the code applies (test/dataset-rules.test.ts keeps them in sync).

/** Every reason a file can be left out, in the order the summary prints them. */
export const SKIP_REASONS = [
  'excluded', // --exclude, not matching --include, or .qtkignore
  'symlink', // links are never followed: a loop cannot hang the walk and nothing outside the repo leaks in
  'not-a-file', // sockets, devices, submodule folders, entries deleted since `git add`
  'unreadable',
  'vendored',
  'lockfile',
  'minified',
  'source-map',
  'generated',
  'data-file',
  'secret',
  'too-large',
  'binary', // NUL bytes (or a binary extension)
  'not-utf8', // bytes that are not valid UTF-8 (nor UTF-16 with a BOM)
  'empty',
  'duplicate', // same normalised content as an earlier file
  'near-duplicate', // MinHash Jaccard estimate ≥ the threshold against an earlier file
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/** Folder names whose whole tree is third-party or build output (matched on any path segment). */
export const VENDORED_DIRS = [
  'node_modules', 'bower_components', 'jspm_packages', 'vendor', 'third_party', 'third-party', 'dist', 'build',
  '__pycache__', '.venv', 'venv', '.tox', '.mypy_cache', '.pytest_cache', '.next', '.nuxt', '.svelte-kit',
  '.turbo', '.parcel-cache', '.gradle', 'Pods', 'DerivedData', 'coverage', '.git', '.hg', '.svn',
] as const;

/** Exact file names of dependency lockfiles. */
export const LOCKFILES = [
  'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'bun.lock', 'Cargo.lock',
  'Gemfile.lock', 'poetry.lock', 'Pipfile.lock', 'uv.lock', 'pdm.lock', 'composer.lock', 'go.sum', 'mix.lock',
  'pubspec.lock', 'Podfile.lock', 'Package.resolved', 'flake.lock', 'packages.lock.json', 'gradle.lockfile',
] as const;

/** Extensions (lower case, with the dot) of data rather than code. */
export const DATA_EXTENSIONS = [
  '.csv', '.tsv', '.jsonl', '.ndjson', '.parquet', '.arrow', '.feather', '.avro', '.orc', '.npy', '.npz', '.pkl',
  '.pickle', '.h5', '.hdf5', '.db', '.sqlite', '.sqlite3', '.safetensors', '.gguf', '.ggml', '.pt', '.pth', '.ckpt',
  '.onnx', '.tflite', '.tfrecord', '.xlsx', '.xls', '.dat', '.mat',
] as const;

/** Extensions that are binary by construction: left out without reading them. */
export const BINARY_EXTENSIONS = [
  '.png', '.jpg', '.jpeg', '.gif', '.bmp', '.ico', '.webp', '.tif', '.tiff', '.psd', '.mp3', '.mp4', '.wav', '.ogg',
  '.flac', '.mov', '.avi', '.webm', '.woff', '.woff2', '.ttf', '.otf', '.eot', '.zip', '.gz', '.tgz', '.bz2', '.xz',
  '.zst', '.7z', '.rar', '.tar', '.jar', '.war', '.class', '.pdf', '.exe', '.dll', '.so', '.dylib', '.a', '.o',
  '.obj', '.lib', '.wasm', '.node', '.pyc', '.pyo', '.bin', '.iso', '.dmg',
] as const;

/** Name patterns of generated or minified files (matched on the base name). */
export const GENERATED_NAME_PATTERNS = [
  { reason: 'minified', pattern: /\.min\.[a-z0-9]+$/i },
  { reason: 'minified', pattern: /[.-]bundle\.min\./i },
  { reason: 'source-map', pattern: /\.map$/i },
  { reason: 'generated', pattern: /(?:_pb2(?:_grpc)?\.py|\.pb\.go|\.pb\.(?:cc|h)|\.g\.dart|\.generated\.[a-z]+|\.designer\.cs)$/i },
] as const satisfies readonly { reason: SkipReason; pattern: RegExp }[];

/** A first-lines marker that tools put in generated files (Go's convention, @generated). */
export const GENERATED_MARKER = /^(?:\/\/|#|\/\*|--)\s*(?:Code generated .* DO NOT EDIT\.|@generated\b)/m;

/** Minified/bundled content: some line longer than this and an average line longer than the next. */
export const MINIFIED_LIMITS = { maxLineChars: 1000, meanLineChars: 200 } as const;

/** File names that hold credentials whatever their content (base name, lower case). */
export const SECRET_FILE_PATTERNS = [
  { rule: 'dotenv', pattern: /^\.env(?:\..*)?$/ },
  { rule: 'ssh-key', pattern: /^id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?$/ },
  { rule: 'key-file', pattern: /\.(?:pem|key|p12|pfx|jks|keystore|kdbx|ppk|asc|gpg)$/ },
  { rule: 'netrc', pattern: /^[._]netrc$/ },
  { rule: 'pgpass', pattern: /^\.pgpass$/ },
  { rule: 'htpasswd', pattern: /^\.htpasswd$/ },
  { rule: 'credentials-file', pattern: /^(?:credentials|client_secrets?|service[-_]account)(?:[-_.].*)?\.json$/ },
  { rule: 'aws-credentials', pattern: /^credentials$/ },
] as const;

/**
 * Content that is a credential. A file containing any of these is left out whole and named by path
 * and rule only. Patterns follow the providers' documented token formats.
 */
export const SECRET_TOKEN_PATTERNS = [
  { rule: 'private-key', pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { rule: 'aws-access-key-id', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z2-7]{16}\b/ },
  { rule: 'github-token', pattern: /\bgh[pousr]_[A-Za-z0-9]{36,255}\b/ },
  { rule: 'github-fine-grained-token', pattern: /\bgithub_pat_[A-Za-z0-9_]{22,255}\b/ },
  { rule: 'gitlab-token', pattern: /\bglpat-[A-Za-z0-9_-]{20,}\b/ },
  { rule: 'slack-token', pattern: /\bxox[baprs]-[A-Za-z0-9-]{10,}/ },
  { rule: 'slack-webhook', pattern: /hooks\.slack\.com\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9]+/ },
  { rule: 'npm-token', pattern: /\bnpm_[A-Za-z0-9]{36}\b/ },
  { rule: 'npmrc-auth', pattern: /(?:^|\n)\s*(?:\/\/[^\n]*:)?_(?:authToken|auth|password)\s*=\s*[^\s$]/ },
  { rule: 'google-api-key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/ },
  { rule: 'stripe-live-key', pattern: /\b[sr]k_live_[0-9A-Za-z]{24,}\b/ },
  { rule: 'huggingface-token', pattern: /\bhf_[A-Za-z]{34}\b/ },
  { rule: 'openai-key', pattern: /\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}/ },
  { rule: 'anthropic-key', pattern: /\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}/ },
] as const;

/** Defaults of the build; the manifest records the values used. */
export const DATASET_DEFAULTS = {
  seqLen: 4096,
  evalFraction: 0.05,
  fimRate: 0,
  seed: 0,
  maxFileBytes: 1 << 20,
  nearDupThreshold: 0.85,
  /** Rows per Arrow record batch is chosen so one batch holds about this many tokens. */
  batchTokens: 1 << 21,
} as const;
