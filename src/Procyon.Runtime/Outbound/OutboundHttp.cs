using System.Net;
using System.Net.Http;
using System.Text;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Procyon.Sats;

namespace Procyon.Runtime.Outbound;

/// <summary>
/// Sends procedures' HTTP requests (the <c>http_request</c> import) with the named client of
/// <see cref="IHttpClientFactory"/>: within a timeout, a size cap each way, a share of requests per
/// database, to hosts the <see cref="AddressPolicy"/> and the module's own list allow, following
/// redirects itself so each hop is checked like the first. Every failure is an answer to the
/// module (an <c>HTTP_*</c> code and a message), never a failure of the server.
/// </summary>
public sealed class OutboundHttp(IHttpClientFactory clients, ModuleRegistry registry, IOptions<HttpOptions> options) : IDisposable
{
    internal const string ClientName = "procyon-outbound";

    /// <summary>The most bytes of a request's method, URI and headers: a module cannot make the server send more.</summary>
    internal const int MaxHeadBytes = 64 << 10;

    /// <summary>Headers that go only to the origin the module named, not to where it redirects.</summary>
    private static readonly string[] Credentials = ["Authorization", "Cookie", "Proxy-Authorization"];

    private readonly PartitionedRateLimiter<string> _perDatabase = PartitionedRateLimiter.Create<string, string>(database =>
        RateLimitPartition.GetConcurrencyLimiter(database, _ => new ConcurrencyLimiterOptions
        {
            PermitLimit = options.Value.MaxConcurrentPerDatabase,
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        }));

    internal HttpOptions Options => options.Value;

    /// <summary>The handler under the named client: no automatic redirects, proxies or cookies; every connection through <see cref="AddressPolicy.ConnectAsync"/>.</summary>
    internal static SocketsHttpHandler Handler(AddressPolicy policy) => new()
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.All,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectCallback = policy.ConnectAsync,
    };

    /// <summary>A failure the module hears of: an <c>HTTP_*</c> code and its message in the buffer.</summary>
    internal static (long Result, byte[] Reply) Failure(long code, string message) => (code, Encoding.UTF8.GetBytes(message));

    /// <summary>
    /// Sends the request a module encoded (<paramref name="wire"/>, see src/abi/README.md) with
    /// <paramref name="body"/>: the response's length and bytes, or a failure. Throws
    /// <see cref="OperationCanceledException"/> only when the call itself is cancelled.
    /// </summary>
    internal async Task<(long Result, byte[] Reply)> SendAsync(string database, byte[] wire, byte[] body, CancellationToken callToken)
    {
        OutboundRequest request;
        try
        {
            request = OutboundRequest.Read(wire);
        }
        catch (InvalidDataException e)
        {
            throw new GuestFaultException($"the module's http_request does not decode: {e.Message}");
        }
        var timeout = request.Timeout is { } asked ? TimeSpan.FromTicks(Math.Clamp(asked.Ticks, 0, Options.MaxTimeout.Ticks)) : Options.DefaultTimeout;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(callToken);
        deadline.CancelAfter(timeout);
        var waiting = true;
        try
        {
            var target = Target(request.Uri);
            using var slot = await _perDatabase.AcquireAsync(database, 1, deadline.Token);
            waiting = false;
            return await FollowAsync(database, request, target, body, deadline.Token);
        }
        catch (OutboundFailureException e)
        {
            return Failure(e.Code, e.Message);
        }
        catch (OperationCanceledException) when (!callToken.IsCancellationRequested)
        {
            return Failure(ModuleAbi.HttpTimeout, waiting
                ? $"no outbound request of database '{database}' ended within the request's timeout of {timeout.TotalSeconds:0.###} s to make room (Procyon:Http:MaxConcurrentPerDatabase, {Options.MaxConcurrentPerDatabase})"
                : $"{request.Method} {request.Uri} had no whole response within its timeout of {timeout.TotalSeconds:0.###} s (the request's Timeout up to Procyon:Http:MaxTimeout, else Procyon:Http:DefaultTimeout)");
        }
    }

    /// <summary>Sends the request and each redirect's, checking every hop's host; the first response that is not a redirect is the answer.</summary>
    private async Task<(long Result, byte[] Reply)> FollowAsync(string database, OutboundRequest request, Uri target, byte[] body, CancellationToken cancellationToken)
    {
        var client = clients.CreateClient(ClientName);
        var (method, headers, content) = (Method(request.Method), request.Headers, body.Length > 0 ? body : null);
        for (var redirects = 0; ; redirects++)
        {
            CheckModuleHosts(database, target);
            using var message = Message(method, target, headers, content);
            using var response = await SendOnceAsync(client, message, cancellationToken);
            if (response.StatusCode is not (HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect)
                || response.Headers.Location is not { } location)
            {
                return await ReplyAsync(response, target, cancellationToken);
            }
            if (redirects == Options.MaxRedirects)
            {
                throw new OutboundFailureException(ModuleAbi.HttpNetwork, $"{request.Method} {request.Uri} was redirected more than {Options.MaxRedirects} times (Procyon:Http:MaxRedirects)");
            }
            var next = new Uri(target, location);
            if (next.Scheme is not ("http" or "https") || (target.Scheme == "https" && next.Scheme == "http"))
            {
                throw new OutboundFailureException(ModuleAbi.HttpRefused, $"{target} redirected to {next}: only http and https are followed, and never from https to http");
            }
            // As browsers do: 303, and 301 or 302 after a POST, go on as a GET without the body.
            if ((response.StatusCode == HttpStatusCode.SeeOther && method != HttpMethod.Head)
                || (response.StatusCode is HttpStatusCode.MovedPermanently or HttpStatusCode.Found && method == HttpMethod.Post))
            {
                (method, content) = (HttpMethod.Get, null);
                headers = [.. headers.Where(h => !h.Name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))];
            }
            if (!Uri.Equals(new Uri(target.GetLeftPart(UriPartial.Authority)), new Uri(next.GetLeftPart(UriPartial.Authority))))
            {
                headers = [.. headers.Where(h => !Credentials.Contains(h.Name, StringComparer.OrdinalIgnoreCase))];
            }
            target = next;
        }
    }

    private static async Task<HttpResponseMessage> SendOnceAsync(HttpClient client, HttpRequestMessage message, CancellationToken cancellationToken)
    {
        try
        {
            return await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException e) when (Refusal(e) is { } refused)
        {
            throw new OutboundFailureException(ModuleAbi.HttpRefused, $"{message.Method} {message.RequestUri} was refused: {refused.Message}");
        }
        catch (HttpRequestException e)
        {
            throw new OutboundFailureException(ModuleAbi.HttpNetwork, $"{message.Method} {message.RequestUri} failed: {e.Message}");
        }
    }

    private static OutboundRefusedException? Refusal(Exception? e) => e switch
    {
        null => null,
        OutboundRefusedException refused => refused,
        _ => Refusal(e.InnerException),
    };

    /// <summary>The module's own list (<c>allowed_http_hosts!</c>), as its database's current version declares it.</summary>
    private void CheckModuleHosts(string database, Uri target)
    {
        if (registry.Find(database)?.Description.HttpHosts is { } hosts && !hosts.Any(host => HostPattern.Parse(host).MatchesHost(target.IdnHost)))
        {
            throw new OutboundFailureException(ModuleAbi.HttpRefused,
                $"{target.IdnHost} is not among the hosts the module's allowed_http_hosts! lists ({string.Join(", ", hosts)})");
        }
    }

    private static Uri Target(string uri) =>
        Uri.TryCreate(uri, UriKind.Absolute, out var target) && target.Scheme is "http" or "https"
            ? target
            : throw new OutboundFailureException(ModuleAbi.HttpInvalidRequest, $"'{uri}' is not an absolute http or https URI");

    private static HttpMethod Method(string name)
    {
        try
        {
            var method = HttpMethod.Parse(name);
            return method == HttpMethod.Connect ? throw new FormatException("CONNECT opens a tunnel") : method;
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new OutboundFailureException(ModuleAbi.HttpInvalidRequest, $"'{name}' is not a method a request may use: {e.Message}");
        }
    }

    private static HttpRequestMessage Message(HttpMethod method, Uri target, IReadOnlyList<(string Name, byte[] Value)> headers, byte[]? body)
    {
        var message = new HttpRequestMessage(method, target) { Content = body is null ? null : new ByteArrayContent(body) };
        foreach (var (name, bytes) in headers)
        {
            var value = Encoding.Latin1.GetString(bytes);
            if (value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
            {
                throw new OutboundFailureException(ModuleAbi.HttpInvalidRequest, $"the value of header '{name}' holds a line break or NUL");
            }
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || message.Headers.TryAddWithoutValidation(name, value))
            {
                continue;
            }
            // Content-Type and its kin belong to the content, which a request without a body gets empty.
            message.Content ??= new ByteArrayContent([]);
            if (!message.Content.Headers.TryAddWithoutValidation(name, value))
            {
                throw new OutboundFailureException(ModuleAbi.HttpInvalidRequest, $"'{name}' is not a header a request may carry");
            }
        }
        return message;
    }

    /// <summary>The reply the module reads: status, headers, then the body, which may not exceed <see cref="HttpOptions.MaxResponseBytes"/>.</summary>
    private async Task<(long Result, byte[] Reply)> ReplyAsync(HttpResponseMessage response, Uri target, CancellationToken cancellationToken)
    {
        var max = Options.MaxResponseBytes;
        OutboundFailureException TooLarge() => new(ModuleAbi.HttpTooLarge, $"the response of {target} is larger than Procyon:Http:MaxResponseBytes ({max} bytes)");
        if (response.Content.Headers.ContentLength > max)
        {
            throw TooLarge();
        }
        var headers = response.Headers.NonValidated.Concat(response.Content.Headers.NonValidated)
            .SelectMany(header => header.Value.Select(value => (header.Key, Value: Encoding.Latin1.GetBytes(value))))
            .ToList();
        var reply = new BsatnWriter();
        reply.WriteU16((ushort)response.StatusCode);
        reply.WriteU32((uint)headers.Count);
        foreach (var (name, value) in headers)
        {
            reply.WriteString(name);
            reply.WriteU32((uint)value.Length);
            reply.WriteBytes(value);
        }
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[81920];
            var bodyStart = reply.WrittenCount;
            for (int read; (read = await stream.ReadAsync(buffer, cancellationToken)) > 0;)
            {
                if (reply.WrittenCount - bodyStart + read > max)
                {
                    throw TooLarge();
                }
                reply.WriteBytes(buffer.AsSpan(0, read));
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw new OutboundFailureException(ModuleAbi.HttpNetwork, $"the response of {target} broke off: {e.Message}");
        }
        var bytes = reply.WrittenSpan.ToArray();
        return (bytes.Length, bytes);
    }

    public void Dispose() => _perDatabase.Dispose();

    /// <summary>Ends a request with an answer to the module.</summary>
    private sealed class OutboundFailureException(long code, string message) : Exception(message)
    {
        public long Code { get; } = code;
    }
}

/// <summary>
/// A request as the module encodes it for <c>http_request</c>: method, URI, headers (name and
/// value bytes) and an optional timeout in microseconds.
/// </summary>
internal sealed record OutboundRequest(string Method, string Uri, IReadOnlyList<(string Name, byte[] Value)> Headers, TimeSpan? Timeout)
{
    /// <summary>Throws <see cref="InvalidDataException"/> when the bytes are not such a request.</summary>
    public static OutboundRequest Read(ReadOnlySpan<byte> bytes)
    {
        var reader = new BsatnReader(bytes);
        var (method, uri) = (reader.ReadString(), reader.ReadString());
        var headers = new (string, byte[])[reader.ReadLength(minimumElementSize: 8)];
        for (var i = 0; i < headers.Length; i++)
        {
            headers[i] = (reader.ReadString(), reader.ReadBytes(reader.ReadLength()).ToArray());
        }
        TimeSpan? timeout = reader.ReadU8() switch
        {
            // A day is beyond any Procyon:Http:MaxTimeout, which cuts it further.
            0 => TimeSpan.FromMicroseconds(Math.Clamp((long)reader.ReadU64(), 0, (long)TimeSpan.FromDays(1).TotalMicroseconds)),
            1 => null,
            var tag => throw new InvalidDataException($"invalid option tag {tag} for the timeout"),
        };
        return reader.Remaining == 0 ? new(method, uri, headers, timeout) : throw new InvalidDataException($"{reader.Remaining} bytes left over after the request");
    }
}
