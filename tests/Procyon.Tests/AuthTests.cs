using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>Identities, tokens and database ownership, on a server with a known signing key.</summary>
public sealed class AuthTests() : OwnServerTest($"--Procyon:Auth:SigningKey={Convert.ToBase64String(SigningKey)}")
{
    private static readonly byte[] SigningKey = Encoding.UTF8.GetBytes("procyon test signing key, 32+ bytes long");

    protected override IEnumerable<(string Database, string Module)> Published => [("example", "example")];

    [Fact]
    public async Task A_new_identity_comes_with_a_token_that_makes_the_caller_that_identity()
    {
        var (identity, token) = await Server.NewIdentityAsync();

        Assert.Matches("^[0-9a-f]{64}$", identity);
        Assert.Equal($"\"{identity}\"", await CallAsync("who_am_i", token));
    }

    [Fact]
    public async Task Calls_without_a_token_are_made_by_the_anonymous_identity()
    {
        Assert.Equal($"\"{new string('0', 64)}\"", await (await Server.CallAsync("example", "who_am_i", "")).Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")]
    public async Task A_garbage_token_is_401(string token)
    {
        var response = await SendAsync(HttpMethod.Post, "/v1/databases/example/call/who_am_i", token);

        await AssertProblemAsync(response, HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task An_expired_token_is_401()
    {
        var expired = Mint(new string('a', 64), expires: DateTime.UtcNow.AddMinutes(-5));

        await AssertProblemAsync(await SendAsync(HttpMethod.Post, "/v1/databases/example/call/who_am_i", expired), HttpStatusCode.Unauthorized);
        Assert.Equal($"\"{new string('b', 64)}\"", await CallAsync("who_am_i", Mint(new string('b', 64), DateTime.UtcNow.AddMinutes(5))));
    }

    [Fact]
    public async Task The_first_publisher_owns_a_database()
    {
        var wasm = await File.ReadAllBytesAsync(Modules.PathOf("faulty"));
        var (_, owner) = await Server.NewIdentityAsync();
        var (_, other) = await Server.NewIdentityAsync();
        Assert.Equal(HttpStatusCode.Created, (await SendAsync(HttpMethod.Put, "/v1/databases/owned", owner, wasm)).StatusCode);

        await AssertProblemAsync(await SendAsync(HttpMethod.Put, "/v1/databases/owned", other, wasm), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await SendAsync(HttpMethod.Delete, "/v1/databases/owned", other), HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(HttpMethod.Put, "/v1/databases/owned", token: null, wasm)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(HttpMethod.Delete, "/v1/databases/owned", token: null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Put, "/v1/databases/owned", owner, wasm)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(HttpMethod.Delete, "/v1/databases/owned", owner)).StatusCode);
    }

    [Fact]
    public async Task The_hub_takes_the_token_as_access_token()
    {
        var (identity, token) = await Server.NewIdentityAsync();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(Server.Address, "/hubs/procyon"), options => options.AccessTokenProvider = () => Task.FromResult<string?>(token))
            .Build();
        await hub.StartAsync();

        var result = await hub.InvokeAsync<JsonElement>("Call", "example", "who_am_i", null, "me");

        Assert.Equal(identity, result.GetProperty("value").GetString());
        Assert.Equal(identity, result.GetProperty("caller").GetString());
    }

    private static string Mint(string subject, DateTime expires) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = "procyon",
        Audience = "procyon",
        Subject = new ClaimsIdentity([new Claim("sub", subject)]),
        NotBefore = expires.AddMinutes(-10),
        IssuedAt = expires.AddMinutes(-10),
        Expires = expires,
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(SigningKey), SecurityAlgorithms.HmacSha256),
    });

    private async Task<string> CallAsync(string function, string token) =>
        await (await SendAsync(HttpMethod.Post, $"/v1/databases/example/call/{function}", token)).Content.ReadAsStringAsync();

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? token, byte[]? body = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : new ByteArrayContent(body) };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return await Server.Http.SendAsync(request);
    }
}
