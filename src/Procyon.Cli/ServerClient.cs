using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Procyon.Cli;

/// <summary>HTTP to one Procyon server, with the token kept for it, and its failures as one-line messages.</summary>
internal sealed class ServerClient : IDisposable
{
    private readonly HttpClient _http;

    private ServerClient(Uri server)
    {
        Server = server;
        Credentials = Credentials.Find(server);
        _http = new HttpClient { BaseAddress = server, Timeout = Timeout.InfiniteTimeSpan };
        if (Credentials is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Credentials.Token);
        }
    }

    public Uri Server { get; }

    /// <summary>What <c>procyon login</c> kept for this server, if anything.</summary>
    public Credentials? Credentials { get; }

    public static ServerClient Open(string server) =>
        Uri.TryCreate(server, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? new ServerClient(uri)
            : throw new CliException($"'{server}' is not a server URL (http://host:port)");

    /// <summary>The path of <paramref name="database"/>'s resource <paramref name="rest"/> (<c>/schema</c>, <c>/call/add</c>, …), its name escaped.</summary>
    public static string DatabasePath(string database, string rest = "") => $"/v1/databases/{Uri.EscapeDataString(database)}{rest}";

    /// <summary>Sends <paramref name="request"/> and returns the response if it succeeded; otherwise throws what the server said.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        var response = await SendUncheckedAsync(request, cancellationToken, completion);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            throw await FailureAsync(response, cancellationToken);
        }
    }

    /// <summary>Sends <paramref name="request"/> and returns the response, whatever its status.</summary>
    public async Task<HttpResponseMessage> SendUncheckedAsync(HttpRequestMessage request, CancellationToken cancellationToken, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        try
        {
            return await _http.SendAsync(request, completion, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new CliException($"cannot reach the Procyon server at {Server}: {e.Message} (is it running? set --server or PROCYON_SERVER)");
        }
    }

    public async Task<JsonElement> SendJsonAsync(HttpMethod method, string path, CancellationToken cancellationToken, HttpContent? content = null)
    {
        using var response = await SendAsync(new HttpRequestMessage(method, path) { Content = content }, cancellationToken);
        return await ReadJsonAsync(response, cancellationToken);
    }

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        if (body.Length == 0)
        {
            return default;
        }
        using var document = JsonDocument.Parse(body);
        return document.RootElement.Clone();
    }

    /// <summary>The problem's detail as one line, with what to do about a missing or refused token.</summary>
    public async Task<CliException> FailureAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        var detail = Detail(text) ?? $"{(int)response.StatusCode} {response.ReasonPhrase}";
        return response.StatusCode switch
        {
            HttpStatusCode.Unauthorized when Credentials is null => new CliException($"{detail} — run `procyon login` first"),
            HttpStatusCode.Unauthorized => new CliException($"{detail} — the token kept for {Server} was refused (expired, or made by another server): run `procyon logout`, then `procyon login`"),
            HttpStatusCode.Forbidden => new CliException($"{detail} — you are {Credentials?.Identity ?? "anonymous"}; another identity owns this database, or it needs its owner's token"),
            _ => new CliException(detail),
        };
    }

    private static string? Detail(string text)
    {
        try
        {
            using var problem = JsonDocument.Parse(text);
            return problem.RootElement.ValueKind == JsonValueKind.Object && problem.RootElement.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.String
                ? detail.GetString()
                : null;
        }
        catch (JsonException)
        {
            return text.Length is > 0 and < 500 ? text.Trim() : null;
        }
    }

    public void Dispose() => _http.Dispose();
}
