using System.Net.Http.Headers;
using Microsoft.AspNetCore.SignalR.Client;

namespace Procyon.Testing;

/// <summary>What tests do with a running server, in this process or another: HTTP calls, publishing, the hub.</summary>
public abstract class ServerHandle(Uri address) : IAsyncDisposable
{
    /// <summary>
    /// The compiled-module cache key of every test server. Cache entries are named by the key, so
    /// with one key test servers share compiled modules as a server's restarts do: a module
    /// compiles once, not once per test database (each would otherwise generate its own key).
    /// </summary>
    protected static readonly string CompiledCacheKey = Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData("procyon test servers"u8));

    private string? _ownerToken;

    public Uri Address { get; } = address;

    public HttpClient Http { get; } = new() { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };

    /// <param name="token">The publisher's token; by default the identity that publishes everything this test server publishes.</param>
    public async Task<HttpResponseMessage> PublishAsync(string database, string module, string? token = null) =>
        await PublishBytesAsync(database, await File.ReadAllBytesAsync(Modules.PathOf(module)), token: token);

    /// <param name="query">Appended to the URL, e.g. <c>?clear=true</c>.</param>
    public async Task<HttpResponseMessage> PublishBytesAsync(string database, byte[] wasm, string query = "", string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/databases/{database}{query}") { Content = new ByteArrayContent(wasm) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/wasm");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token ?? await OwnerTokenAsync());
        return await Http.SendAsync(request);
    }

    public async Task<HttpResponseMessage> DeleteAsync(string database, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/v1/databases/{database}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token ?? await OwnerTokenAsync());
        return await Http.SendAsync(request);
    }

    /// <summary>A new identity and its token, from <c>POST /v1/identity</c>.</summary>
    public async Task<(string Identity, string Token)> NewIdentityAsync()
    {
        using var response = await Http.PostAsync("/v1/identity", null);
        response.EnsureSuccessStatusCode();
        using var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (body.RootElement.GetProperty("identity").GetString()!, body.RootElement.GetProperty("token").GetString()!);
    }

    /// <summary>The token of the identity that publishes (and so owns) everything this test server publishes.</summary>
    public async Task<string> OwnerTokenAsync() => _ownerToken ??= (await NewIdentityAsync()).Token;

    /// <summary>A database's last 1,000 log lines, read with the owner's token.</summary>
    /// <param name="token">The owner's token when another handle published the database.</param>
    public async Task<string> LogsAsync(string database, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/databases/{database}/logs?limit=1000");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token ?? await OwnerTokenAsync());
        using var response = await Http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStringAsync();
    }

    public async Task<HttpResponseMessage> CallAsync(string database, string function, string json)
    {
        using var content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        return await Http.PostAsync($"/v1/databases/{database}/call/{function}", content);
    }

    /// <param name="token">The identity to connect as; none connects anonymously.</param>
    /// <summary><c>POST /v1/databases/{db}/sql</c>, with a token or none.</summary>
    public async Task<HttpResponseMessage> SqlAsync(string database, string sql, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/databases/{database}/sql") { Content = new StringContent(sql) };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return await Http.SendAsync(request);
    }

    /// <param name="database">Binds the connection to the database's client_connected / client_disconnected reducers (<c>?db=</c>).</param>
    public async Task<HubConnection> ConnectHubAsync(string? token = null, string? database = null)
    {
        var path = database is null ? "/hubs/procyon" : $"/hubs/procyon?db={Uri.EscapeDataString(database)}";
        var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(Address, path), options => options.AccessTokenProvider = () => Task.FromResult(token))
            .Build();
        await hub.StartAsync();
        return hub;
    }

    public virtual ValueTask DisposeAsync()
    {
        Http.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}
