namespace Procyon.Runtime;

/// <summary>
/// The host's side of the module ABI (src/abi/README.md, checked by AbiTests): the exports the SDK
/// generates and the numbers both sides agree on. The imports are <see cref="HostImports"/>.
/// </summary>
internal static class ModuleAbi
{
    public const string PreinitPrefix = "__procyon_preinit__";
    public const string Describe = "__procyon_describe__";
    public const string Call = "__procyon_call__";
    public const string AsyncifyData = "__procyon_asyncify_data__";

    /// <summary>Function flag in the description: results reach every subscriber.</summary>
    public const byte FunctionPublic = 1;

    /// <summary>Column flag in the description: the column's <c>#[default(value)]</c> follows its flags.</summary>
    public const byte ColumnDefault = 16;

    // What __procyon_call__ returns.
    public const int StatusOk = 0;
    public const int StatusBadArguments = 2;
    public const int StatusNoSuchFunction = 3;
    public const int StatusFailed = 4;

    /// <summary>A table import's result: the row's unique key is taken (the buffer holds the message).</summary>
    public const long TableUniqueViolation = -1;

    /// <summary>A table import's result: no row has that key.</summary>
    public const long TableNotFound = -2;

    /// <summary><c>table_iter</c>'s index for a scan of the whole table.</summary>
    public const int ScanWholeTable = -1;

    /// <summary><c>tx_commit</c>'s result when Postgres could not serialize the transaction: the SDK runs the closure again.</summary>
    public const long TxRetry = 1;

    // http_request's results when no response came (the buffer holds the message).
    public const long HttpInvalidRequest = -1;
    public const long HttpRefused = -2;
    public const long HttpTimeout = -3;
    public const long HttpTooLarge = -4;
    public const long HttpNetwork = -5;

    /// <summary>How the SDK's allocator begins the panic it reports before aborting on a failed allocation.</summary>
    public const string OutOfMemory = "out of memory: ";

    /// <summary><c>console_log</c>'s levels, by number (the <c>log</c> crate's: 1 is ERROR … 5 is TRACE).</summary>
    public static IReadOnlyList<string> LogLevels { get; } = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
}

/// <summary>A module that cannot be published, with the reason the publisher gets (400).</summary>
public sealed class ModuleRejectedException(string message) : Exception(message);
