using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Server;

namespace Procyon.Testing;

/// <summary>The real server on Kestrel, on a free loopback port, against a test database.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private string? _ownerToken;

    private TestServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri Address { get; }

    public HttpClient Http { get; }

    public static async Task<TestServer> StartAsync(TestDatabase database, params string[] settings)
    {
        string[] args =
        [
            "--urls=http://127.0.0.1:0",
            $"--ConnectionStrings:Postgres={database.ConnectionString}",
            "--Logging:LogLevel:Default=Warning",
            .. settings,
        ];
        var app = Program.Build(args);
        await app.StartAsync();
        return new TestServer(app, new Uri(app.Urls.First()));
    }

    public async Task<HttpResponseMessage> PublishAsync(string database, string module) =>
        await PublishBytesAsync(database, await File.ReadAllBytesAsync(Modules.PathOf(module)));

    /// <param name="query">Appended to the URL, e.g. <c>?clear=true</c>.</param>
    public async Task<HttpResponseMessage> PublishBytesAsync(string database, byte[] wasm, string query = "")
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/databases/{database}{query}") { Content = new ByteArrayContent(wasm) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/wasm");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await OwnerTokenAsync());
        return await Http.SendAsync(request);
    }

    public async Task<HttpResponseMessage> DeleteAsync(string database)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/v1/databases/{database}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await OwnerTokenAsync());
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

    /// <summary>The token of the identity that publishes everything this test server publishes.</summary>
    private async Task<string> OwnerTokenAsync() => _ownerToken ??= (await NewIdentityAsync()).Token;

    public async Task<HttpResponseMessage> CallAsync(string database, string function, string json)
    {
        using var content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        return await Http.PostAsync($"/v1/databases/{database}/call/{function}", content);
    }

    public async Task<HubConnection> ConnectHubAsync()
    {
        var hub = new HubConnectionBuilder().WithUrl(new Uri(Address, "/hubs/procyon")).Build();
        await hub.StartAsync();
        return hub;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
