using System.ComponentModel.DataAnnotations;

namespace Procyon.Server.Auth;

/// <summary>Identities and tokens, bound from the <c>Procyon:Auth</c> section.</summary>
public sealed class AuthOptions
{
    public const string Section = "Procyon:Auth";

    /// <summary>
    /// Base64 HMAC-SHA256 key (at least 32 bytes) that signs tokens. When empty, one is generated
    /// once and kept in Postgres (<c>procyon.settings</c>), so every replica shares it.
    /// </summary>
    public string? SigningKey { get; set; }

    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Whether calls without a token are allowed (as the anonymous identity, 64 zeros).</summary>
    public bool AllowAnonymousCalls { get; set; } = true;

    /// <summary>
    /// Identities one client address may create per minute (429 beyond): each may own databases,
    /// so free identities would mean free databases.
    /// </summary>
    [Range(1, 1_000_000)]
    public int IdentitiesPerMinute { get; set; } = 60;
}
