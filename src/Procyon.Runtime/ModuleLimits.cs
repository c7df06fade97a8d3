namespace Procyon.Runtime;

/// <summary>
/// Caps on what a module may declare, checked when it is published (400 beyond them). With them,
/// every walk over a description, its OpenAPI document and its tables stays small, whatever the
/// module declares. README, "Writing a module", lists them; values have their own
/// (<see cref="Sats.ValueLimits"/>).
/// </summary>
public static class ModuleLimits
{
    /// <summary>The description's bytes, which bound all of its types together.</summary>
    public const int MaxDescriptionBytes = 256 << 10;

    /// <summary>Named types in the typespace.</summary>
    public const int MaxTypes = 4096;

    /// <summary>Fields of one struct.</summary>
    public const int MaxFields = 1024;

    /// <summary>Variants of one enum: its BSATN tag is one byte.</summary>
    public const int MaxVariants = 256;

    public const int MaxFunctions = 1024;

    /// <summary>Parameters of one function.</summary>
    public const int MaxParameters = 64;

    public const int MaxTables = 256;

    /// <summary>Columns of one table.</summary>
    public const int MaxColumns = 256;

    /// <summary>Primary-key, unique and indexed columns of one table (Postgres indexes at most 32 columns together).</summary>
    public const int MaxIndexedColumns = 32;

    /// <summary>Entries of <c>allowed_http_hosts!</c>.</summary>
    public const int MaxHttpHosts = 64;

    /// <summary>Declared indexes (<c>index(accessor = x, btree(columns = [..]))</c>) of one table.</summary>
    public const int MaxIndexes = 32;

    /// <summary>Columns of one index: the SDK's <c>filter</c> takes a tuple of at most this many values.</summary>
    public const int MaxIndexColumns = 6;

    /// <summary>Bytes of every name: Postgres cuts identifiers at 63, so two longer table names could share one table.</summary>
    public const int MaxNameBytes = 63;

    /// <summary>
    /// Whether <paramref name="name"/> may name a function, parameter, field, variant, type, table
    /// or column: an ASCII identifier of 1 to <see cref="MaxNameBytes"/> bytes. Such a name is safe
    /// as a JSON key, a URL segment, a Postgres identifier and a part of the hub's group names.
    /// </summary>
    public static bool IsName(string name) =>
        name.Length is > 0 and <= MaxNameBytes
        && !char.IsAsciiDigit(name[0])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
