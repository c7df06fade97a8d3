using System.ComponentModel.DataAnnotations;

namespace Procyon.Runtime;

/// <summary>Limits and tools of the Wasmtime host, bound from the <c>Procyon:Runtime</c> section.</summary>
public sealed class RuntimeOptions
{
    public const string Section = "Procyon:Runtime";

    /// <summary>CPU time one call may run between sleeps before it is interrupted (504).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the engine's epoch advances: the resolution of <see cref="CallTimeout"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:00:01")]
    public TimeSpan EpochTick { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Linear memory one instance may grow to.</summary>
    [Range(1 << 20, 4L << 30)]
    public long MaxMemoryBytes { get; set; } = 64 << 20;

    /// <summary>Largest <c>.wasm</c> accepted for publishing.</summary>
    [Range(1024, 256 << 20)]
    public int MaxModuleBytes { get; set; } = 16 << 20;

    /// <summary>
    /// Idle instances kept per module for reuse; more are created on demand and dropped after use.
    /// Creating one costs about 0.25 ms and dropping one about as much, so bursts of sleepers favour a large pool.
    /// </summary>
    [Range(0, 100_000)]
    public int MaxIdleInstances { get; set; } = 1024;

    /// <summary>Binaryen's <c>wasm-opt</c>, which rewrites modules with Asyncify so procedures can sleep.</summary>
    [Required]
    public string WasmOptPath { get; set; } = "wasm-opt";

    /// <summary>
    /// Whether a publish answers after a quick Asyncify rewrite (no other optimization) and the
    /// optimized rewrite (<c>wasm-opt -O2</c>) replaces it in the background when done; when false
    /// a publish waits for the optimized rewrite.
    /// </summary>
    public bool OptimizeAfterPublish { get; set; } = true;

    /// <summary>
    /// A procedure that goes to sleep for at least this long is written to Postgres (its
    /// instance's memory and globals), so the call survives this server: another server, or this
    /// one restarted, wakes it. Shorter naps stay in memory only.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan DurableSleepAfter { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The largest snapshot (compressed) written for a sleeping call; a call whose state is larger sleeps in memory only.</summary>
    [Range(typeof(long), "65536", "1073741824")]
    public long MaxSnapshotBytes { get; set; } = 16L << 20;

    /// <summary>How long a server holds a durable call without renewing before another server may take it over.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan DurableLease { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long <c>GET /v1/calls/{id}</c> keeps the result of a finished durable call.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan CallRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long one run of <c>wasm-opt</c> may take.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan PrepareTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Address space <c>wasm-opt</c> may take (through <c>prlimit --as</c>). It reserves much more
    /// than it touches (threads, allocator arenas): below about 256 MiB it slows down sharply.
    /// </summary>
    [Range(typeof(long), "16777216", "1099511627776")]
    public long PrepareMemoryBytes { get; set; } = 1L << 30;

    /// <summary>Modules prepared (validated, rewritten by <c>wasm-opt</c>, compiled) at once; <c>wasm-opt</c> itself uses every core.</summary>
    [Range(1, 1000)]
    public int MaxConcurrentPrepares { get; set; } = 2;

    /// <summary>Publishes waiting for a preparation; beyond this a publish is refused with 503 and <c>Retry-After</c>.</summary>
    [Range(0, 10_000)]
    public int MaxQueuedPrepares { get; set; } = 8;

    /// <summary>Log lines kept in memory per database for <c>GET /logs</c>.</summary>
    [Range(1, 1_000_000)]
    public int LogLinesPerDatabase { get; set; } = 1000;

    /// <summary>Bytes of log lines kept in memory per database; the oldest go first.</summary>
    [Range(4096, 1L << 30)]
    public long LogBytesPerDatabase { get; set; } = 1 << 20;

    /// <summary>Readers following a database's log lines at once (<c>GET /logs?follow=true</c>); more are refused with 503.</summary>
    [Range(1, 10_000)]
    public int LogFollowersPerDatabase { get; set; } = 16;

    /// <summary>Lines a follower of the logs may fall behind before it loses the oldest.</summary>
    [Range(16, 1_000_000)]
    public int LogFollowerBacklog { get; set; } = 1024;

    /// <summary>
    /// Linear memory all instances may hold together, running, sleeping and idle (a new call is
    /// refused with 503 beyond it). Counted by what each instance may touch, not what is resident.
    /// Half the machine's memory by default.
    /// </summary>
    [Range(16L << 20, 1L << 40)]
    public long MaxTotalMemoryBytes { get; set; } = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;

    /// <summary>Linear memory idle instances may keep for reuse, across all modules; beyond it they are dropped.</summary>
    [Range(0, 1L << 40)]
    public long MaxIdleMemoryBytes { get; set; } = 256 << 20;

    /// <summary>Calls of one database in flight at once, sleeping ones included (503 beyond).</summary>
    [Range(1, 1_000_000)]
    public int MaxCallsPerDatabase { get; set; } = 4096;

    /// <summary>Calls of one identity in flight at once; calls without a token share one such budget (429 beyond).</summary>
    [Range(1, 1_000_000)]
    public int MaxCallsPerIdentity { get; set; } = 1024;

    /// <summary>
    /// Calls of one database running wasm at the same moment (not sleeping or waiting for
    /// Postgres); the others wait for their turn without a thread, so one database's busy calls
    /// cannot take every thread from the rest of the server.
    /// </summary>
    [Range(1, 1024)]
    public int MaxRunningCallsPerDatabase { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// How long a call may wait for its first turn to run (<see cref="MaxRunningCallsPerDatabase"/>)
    /// before it is refused with 503, having done nothing. The CPU deadline counts from the turn.
    /// </summary>
    public TimeSpan MaxTurnWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Databases one identity may own; publishing another is refused (403).</summary>
    [Range(1, 1_000_000)]
    public int MaxDatabasesPerIdentity { get; set; } = 32;

    /// <summary>Calls running at once, sleeping ones included; more wait in a queue.</summary>
    [Range(1, 1_000_000)]
    public int MaxConcurrentCalls { get; set; } = 16_384;

    /// <summary>Calls waiting for a slot; beyond this a call is refused with 503 and <c>Retry-After</c>.</summary>
    [Range(0, 1_000_000)]
    public int MaxQueuedCalls { get; set; } = 4096;

    /// <summary>
    /// The server's own files, in a directory it creates readable only by the user it runs as
    /// (mode 0700): by default under that user's local application data (<c>$XDG_DATA_HOME</c> or
    /// <c>~/.local/share</c>), never a directory other users share.
    /// </summary>
    [Required]
    public string DataDirectory { get; set; } = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "procyon");

    /// <summary>
    /// Where compiled modules are kept across restarts: unset, <c>compiled</c> under
    /// <see cref="DataDirectory"/>; empty turns the cache off. Its files are loaded as machine
    /// code, so a directory another user owns or group or others may write to is refused.
    /// </summary>
    public string? CompiledModuleCache { get; set; }

    /// <summary>
    /// Base64 HMAC-SHA256 key (32+ bytes) that authenticates compiled-module cache entries before
    /// they are loaded; unset, one is generated once and kept in Postgres.
    /// </summary>
    [Base64String]
    public string? CompiledCacheKey { get; set; }

    /// <summary>
    /// Size of the compiled-module cache: beyond it, entries no module loaded here uses are
    /// deleted, least recently used first. Such entries unused for a day go whatever the size.
    /// </summary>
    [Range(0, long.MaxValue)]
    public long CompiledCacheMaxBytes { get; set; } = 1L << 30;

    /// <summary>Transactions open at once (reducers and procedures' with_tx); keep it below the Npgsql pool size (default 100).</summary>
    [Range(1, 10_000)]
    public int MaxConcurrentTransactions { get; set; } = 64;

    /// <summary>Transactions one database may have open at once: its share of <see cref="MaxConcurrentTransactions"/>.</summary>
    [Range(1, 10_000)]
    public int MaxTransactionsPerDatabase { get; set; } = 16;

    /// <summary>How long a call waits for a free transaction slot before it is refused (503).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan TransactionSlotWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Wall-clock time one transaction may stay open, table calls included (504 beyond, rolled
    /// back): a module cannot hold locks by calling tables in a loop.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan TransactionTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a republish that migrates a table (adds a column or an index) waits for the table's
    /// lock behind other transactions before it gives up (503, nothing published): while it waits,
    /// later readers and writers of the table wait behind it.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan MigrationLockTimeout { get; set; } = TimeSpan.FromSeconds(2);
}
