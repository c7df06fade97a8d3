using System.ComponentModel.DataAnnotations;

namespace Procyon.Server.Api;

/// <summary>Limits of the HTTP API, bound from the <c>Procyon:Api</c> section.</summary>
public sealed class ApiOptions
{
    public const string Section = "Procyon:Api";

    /// <summary>Largest JSON body a call accepts (413 beyond it).</summary>
    [Range(64, 64 << 20)]
    public int MaxCallBodyBytes { get; set; } = 1 << 20;

    /// <summary>Rows the SQL endpoint returns at most; the response says when it cut.</summary>
    [Range(1, 1_000_000)]
    public int SqlRowLimit { get; set; } = 1000;

    /// <summary>Bytes of JSON the SQL endpoint answers at most; a larger answer is refused with 413, so it is never held whole.</summary>
    [Range(1024, 1 << 30)]
    public int SqlMaxBytes { get; set; } = 16 << 20;

    /// <summary>Statement timeout of the SQL endpoint.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan SqlTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
