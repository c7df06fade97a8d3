using System.Net.WebSockets;
using System.Text;

namespace Procyon.Testing;

/// <summary>
/// A raw WebSocket that speaks SignalR's JSON protocol just far enough to subscribe to example
/// (or stream its results), then never reads again; it pings, so the server's client timeout
/// does not end it.
/// </summary>
public sealed class StalledSubscriber : IAsyncDisposable
{
    private const char Separator = '\u001e';

    private readonly ClientWebSocket _socket = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _pinging = Task.CompletedTask;

    /// <param name="method"><c>Subscribe</c> or <c>Results</c>.</param>
    public static async Task<StalledSubscriber> StartAsync(ServerHandle server, string method)
    {
        var subscriber = new StalledSubscriber();
        var address = new UriBuilder(new Uri(server.Address, "/hubs/procyon")) { Scheme = "ws" }.Uri;
        await subscriber._socket.ConnectAsync(address, CancellationToken.None);
        await subscriber.SendAsync("""{"protocol":"json","version":1}""");
        await subscriber.ReadUntilAsync("{}");
        // Type 4 is a stream invocation, 1 a plain one.
        await subscriber.SendAsync($$"""{"type":{{(method == "Results" ? 4 : 1)}},"invocationId":"1","target":"{{method}}","arguments":["example",null]}""");
        // A stream starts a moment after its invocation: subscribed once a result comes through.
        var subscribed = subscriber.ReadUntilAsync("\"fn\":\"add\"");
        while (!subscribed.IsCompleted)
        {
            (await server.CallAsync("example", "add", "[1, 1]")).EnsureSuccessStatusCode();
            await Task.WhenAny(subscribed, Task.Delay(100));
        }
        await subscribed;
        subscriber._pinging = subscriber.PingAsync();
        return subscriber;
    }

    /// <summary>Reads (at last) everything the server had sent, and whether the server then ended the connection within <paramref name="timeout"/>.</summary>
    public async Task<bool> ClosedAsync(TimeSpan timeout)
    {
        using var waiting = new CancellationTokenSource(timeout);
        var buffer = new byte[1 << 16];
        try
        {
            while ((await _socket.ReceiveAsync(buffer, waiting.Token)).MessageType != WebSocketMessageType.Close)
            {
            }
            return true;
        }
        catch (WebSocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _pinging;
        _socket.Abort();
        _socket.Dispose();
        _stop.Dispose();
    }

    private async Task PingAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await SendAsync("""{"type":6}""");
                await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // Stopped, or the server ended the connection.
        }
    }

    private Task SendAsync(string message) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(message + Separator), WebSocketMessageType.Text, endOfMessage: true, _stop.Token);

    /// <summary>Reads messages until one contains <paramref name="text"/>.</summary>
    private async Task ReadUntilAsync(string text)
    {
        using var waiting = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[1 << 16];
        var received = new StringBuilder();
        while (!received.ToString().Contains(text, StringComparison.Ordinal))
        {
            var read = await _socket.ReceiveAsync(buffer, waiting.Token);
            received.Append(Encoding.UTF8.GetString(buffer, 0, read.Count));
        }
    }
}
