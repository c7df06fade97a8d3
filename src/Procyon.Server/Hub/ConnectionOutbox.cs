using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR;

namespace Procyon.Server.Hub;

/// <summary>
/// The results waiting for one hub connection, written in order by a pump of its own, so a
/// connection that reads slowly (or not at all) keeps only itself waiting. Bounded in results
/// and bytes (<see cref="HubOptions"/>): a connection that falls further behind is aborted, and
/// its client can connect again.
/// </summary>
internal sealed partial class ConnectionOutbox
{
    private readonly HubConnectionContext _connection;
    private readonly HubOptions _limits;
    private readonly ILogger<ConnectionOutbox> _logger;
    private readonly Channel<Delivery> _pending = Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Results and their bytes enqueued and not yet written to the connection.</summary>
    private int _results;
    private long _bytes;

    public ConnectionOutbox(HubConnectionContext connection, HubOptions limits, ILogger<ConnectionOutbox> logger)
    {
        _connection = connection;
        _limits = limits;
        _logger = logger;
        _ = PumpAsync(connection.ConnectionAborted);
    }

    public void Enqueue(Delivery delivery)
    {
        var results = Interlocked.Increment(ref _results);
        var bytes = Interlocked.Add(ref _bytes, delivery.Size);
        var within = results == 1 || (results <= _limits.MaxPendingResultsPerConnection && bytes <= _limits.MaxPendingBytesPerConnection);
        if (within && _pending.Writer.TryWrite(delivery))
        {
            return;
        }
        // Only the first overflow aborts; later results find the outbox closed.
        if (_pending.Writer.TryComplete())
        {
            LogFellBehind(_connection.ConnectionId, results - 1, bytes - delivery.Size);
            _connection.Abort();
        }
    }

    private async Task PumpAsync(CancellationToken connectionAborted)
    {
        try
        {
            await foreach (var delivery in _pending.Reader.ReadAllAsync(connectionAborted))
            {
                await _connection.WriteAsync(delivery.Message, connectionAborted);
                Interlocked.Decrement(ref _results);
                Interlocked.Add(ref _bytes, -delivery.Size);
            }
        }
        catch (OperationCanceledException)
        {
            // The connection ended (or was aborted); what waited for it goes with it.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Hub connection {ConnectionId} fell {Results} results ({Bytes} bytes) behind; aborting it")]
    private partial void LogFellBehind(string connectionId, int results, long bytes);
}
