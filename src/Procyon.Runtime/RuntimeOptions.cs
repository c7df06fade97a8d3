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

    /// <summary>How long publishing may spend in <c>wasm-opt</c>.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan PrepareTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Log lines kept in memory per database for <c>GET /logs</c>.</summary>
    [Range(1, 1_000_000)]
    public int LogLinesPerDatabase { get; set; } = 1000;

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
}
