using System.ComponentModel.DataAnnotations;

namespace Procyon.Server.Api;

/// <summary>Limits of the HTTP API, bound from the <c>Procyon:Api</c> section.</summary>
public sealed class ApiOptions
{
    public const string Section = "Procyon:Api";

    /// <summary>Largest JSON body a call accepts (413 beyond it).</summary>
    [Range(64, 64 << 20)]
    public int MaxCallBodyBytes { get; set; } = 1 << 20;
}
