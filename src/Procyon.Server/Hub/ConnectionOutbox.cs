using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;

namespace Procyon.Server.Hub;

/// <summary>
/// The results waiting for one hub connection, written in order by one pump at a time, so a
/// connection that reads slowly (or not at all) keeps only itself waiting. Bounded in results
/// and bytes (<see cref="HubOptions"/>): a connection that falls further behind is aborted, and
/// its client can connect again.
/// </summary>
internal sealed partial class ConnectionOutbox(HubConnectionContext connection, HubOptions limits, ILogger<ConnectionOutbox> logger)
{
    private readonly ConcurrentQueue<Delivery> _pending = new();

    /// <summary>Results and their bytes enqueued and not yet written to the connection.</summary>
    private int _results;
    private long _bytes;

    /// <summary>1 while a pump writes: one at a time, so results leave in the order they came.</summary>
    private int _pumping;

    /// <summary>1 once the connection fell too far behind and was aborted.</summary>
    private int _abandoned;

    public void Enqueue(Delivery delivery)
    {
        if (Volatile.Read(ref _abandoned) == 1)
        {
            Drop(delivery);
            return;
        }
        var results = Interlocked.Increment(ref _results);
        var bytes = Interlocked.Add(ref _bytes, delivery.Size);
        if (results > 1 && (results > limits.MaxPendingResultsPerConnection || bytes > limits.MaxPendingBytesPerConnection))
        {
            Abandon(results - 1, bytes - delivery.Size);
            Drop(delivery);
            return;
        }
        _pending.Enqueue(delivery);
        if (Interlocked.CompareExchange(ref _pumping, 1, 0) == 0)
        {
            _ = PumpAsync();
        }
    }

    /// <summary>
    /// Writes what waits, in order. It runs on the caller's thread until a write cannot complete at
    /// once (the connection is full), so the fan-out loop writes to connections that keep up
    /// itself, as a group send would, and leaves a slow one to its pump.
    /// </summary>
    private async Task PumpAsync()
    {
        do
        {
            while (!connection.ConnectionAborted.IsCancellationRequested && _pending.TryDequeue(out var delivery))
            {
                await connection.WriteAsync(delivery.Message);
                Telemetry.HubTelemetry.ResultSent(delivery.Result);
                Interlocked.Decrement(ref _results);
                Interlocked.Add(ref _bytes, -delivery.Size);
            }
            Volatile.Write(ref _pumping, 0);
        }
        // A result enqueued while this pump was letting go is this pump's, unless another took it.
        while (!_pending.IsEmpty && !connection.ConnectionAborted.IsCancellationRequested && Interlocked.CompareExchange(ref _pumping, 1, 0) == 0);
    }

    private void Abandon(int results, long bytes)
    {
        if (Interlocked.Exchange(ref _abandoned, 1) == 0)
        {
            LogFellBehind(connection.ConnectionId, results, bytes);
            connection.Abort();
            while (_pending.TryDequeue(out var dropped))
            {
                Drop(dropped);
            }
        }
    }

    private static void Drop(Delivery delivery) => Telemetry.HubTelemetry.ResultDropped(delivery.Result, Telemetry.HubTelemetry.DropReason.Connection);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Hub connection {ConnectionId} fell {Results} results ({Bytes} bytes) behind; aborting it")]
    private partial void LogFellBehind(string connectionId, int results, long bytes);
}
