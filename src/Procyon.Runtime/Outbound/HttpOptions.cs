using System.ComponentModel.DataAnnotations;

namespace Procyon.Runtime.Outbound;

/// <summary>Limits of procedures' outbound HTTP (<c>ctx.http</c>), bound from the <c>Procyon:Http</c> section.</summary>
public sealed class HttpOptions : IValidatableObject
{
    public const string Section = "Procyon:Http";

    /// <summary>How long a request may take, connecting to the last byte of the response, when the module names no <c>Timeout</c>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest timeout a module may ask for; longer ones are cut to it.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan MaxTimeout { get; set; } = TimeSpan.FromSeconds(180);

    /// <summary>A response body (after decompression) longer than this fails the request: the host holds it whole.</summary>
    [Range(1024, 1L << 30)]
    public int MaxResponseBytes { get; set; } = 8 << 20;

    /// <summary>A request body longer than this is refused before anything is sent.</summary>
    [Range(0, 1L << 30)]
    public int MaxRequestBytes { get; set; } = 4 << 20;

    /// <summary>Requests of one database in flight at once; more wait (within their timeout) for one to end.</summary>
    [Range(1, 10_000)]
    public int MaxConcurrentPerDatabase { get; set; } = 16;

    /// <summary>Redirects followed per request; each is checked as the first request was.</summary>
    [Range(0, 20)]
    public int MaxRedirects { get; set; } = 5;

    /// <summary>
    /// Host names (<c>*.example.com</c> for its subdomains) and IP addresses that requests may reach
    /// although they are private, loopback, link-local or otherwise not public (a name allows
    /// whatever it resolves to).
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (MaxTimeout < DefaultTimeout)
        {
            yield return new ValidationResult($"MaxTimeout ({MaxTimeout}) is shorter than DefaultTimeout ({DefaultTimeout})", [nameof(MaxTimeout)]);
        }
        foreach (var host in AllowedHosts.Where(host => !HostPattern.IsPattern(host)))
        {
            yield return new ValidationResult($"AllowedHosts entry '{host}' is not a host name, *. and a domain, or an IP address", [nameof(AllowedHosts)]);
        }
    }
}
