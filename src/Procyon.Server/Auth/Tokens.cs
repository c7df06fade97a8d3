using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Procyon.Runtime;
using Procyon.Storage;

namespace Procyon.Server.Auth;

/// <summary>Issues the JWTs of <c>POST /v1/identity</c>; JwtBearer validates them with the same key.</summary>
public sealed class Tokens(ModuleStore store, IOptions<AuthOptions> options)
{
    public const string Issuer = "procyon";
    public const string Audience = "procyon";

    private SymmetricSecurityKey? _key;

    internal SymmetricSecurityKey Key => _key ?? throw new InvalidOperationException("the signing key is not loaded yet");

    /// <summary>Loads the configured key, or the one kept in Postgres (creating it the first time).</summary>
    public async Task LoadKeyAsync(CancellationToken cancellationToken)
    {
        var configured = options.Value.SigningKey;
        var encoded = string.IsNullOrEmpty(configured)
            ? await store.SettingAsync("auth.signing_key", () => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), cancellationToken)
            : configured;
        var bytes = Convert.FromBase64String(encoded);
        _key = bytes.Length >= 32 ? new SymmetricSecurityKey(bytes) : throw new InvalidOperationException("Procyon:Auth:SigningKey must be at least 32 bytes of base64");
    }

    /// <summary>A new identity and a token that proves it.</summary>
    public (Identity Identity, string Token) Issue()
    {
        var identity = new Identity(RandomNumberGenerator.GetBytes(Identity.Length));
        var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            Subject = new ClaimsIdentity([new Claim(JwtRegisteredClaimNames.Sub, identity.ToString())]),
            Expires = DateTime.UtcNow + options.Value.TokenLifetime,
            SigningCredentials = new SigningCredentials(Key, SecurityAlgorithms.HmacSha256),
        });
        return (identity, token);
    }

    /// <summary>The caller's identity: the token's subject, or the anonymous identity.</summary>
    public static Identity CallerOf(ClaimsPrincipal user) =>
        user.FindFirst(JwtRegisteredClaimNames.Sub)?.Value is { Length: Identity.Length * 2 } hex
            ? Identity.Parse(hex)
            : Identity.Anonymous;

    /// <summary>The caller's identity in hex, or null when it presented no token.</summary>
    public static string? IdentityOf(ClaimsPrincipal user) => user.Identity?.IsAuthenticated == true ? CallerOf(user).ToString() : null;

    internal void Configure(JwtBearerOptions bearer)
    {
        bearer.MapInboundClaims = false;
        bearer.TokenValidationParameters = new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = Audience,
            IssuerSigningKeyResolver = (_, _, _, _) => [Key],
            ClockSkew = TimeSpan.FromSeconds(30),
        };
        bearer.Events = new JwtBearerEvents
        {
            // Browsers cannot set headers on WebSockets: the hub takes the token as ?access_token=.
            OnMessageReceived = context =>
            {
                if (context.Request.Path.StartsWithSegments(Hub.ProcyonHub.Path) && context.Request.Query["access_token"] is { Count: > 0 } token)
                {
                    context.Token = token;
                }
                return Task.CompletedTask;
            },
        };
    }
}
