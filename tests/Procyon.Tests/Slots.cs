using System.Diagnostics;
using System.Net;

namespace Procyon.Tests;

/// <summary>
/// Fills a limit that refuses at once (no queue) with calls that hold their slots, then probes it.
/// A probe of a queueing limit would wait in the queue for the holders to end.
/// </summary>
internal static class Slots
{
    /// <summary>
    /// Calls until a response has <paramref name="status"/> (the calls before it found room); fails after 10 s.
    /// A probe in flight can take the slot a holder was about to fill: such a holder is sent again.
    /// </summary>
    public static async Task<HttpResponseMessage> FirstAsync(Func<Task<HttpResponseMessage>> call, HttpStatusCode status, Holders? holders = null)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            holders?.Resend(status);
            var response = await call();
            if (response.StatusCode == status)
            {
                return response;
            }
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), $"no {status} within 10 s; last {response.StatusCode}");
            await Task.Delay(20);
        }
    }

    /// <summary>Calls meant to hold slots while others probe the limit.</summary>
    public sealed class Holders(int count, Func<Task<HttpResponseMessage>> call)
    {
        public List<Task<HttpResponseMessage>> Calls { get; } = Enumerable.Range(0, count).Select(_ => call()).ToList();

        /// <summary>Sends again each call that was refused with <paramref name="refused"/> (it lost its slot to a probe).</summary>
        public void Resend(HttpStatusCode refused)
        {
            for (var i = 0; i < Calls.Count; i++)
            {
                if (Calls[i].IsCompletedSuccessfully && Calls[i].Result.StatusCode == refused)
                {
                    Calls[i].Result.Dispose();
                    Calls[i] = call();
                }
            }
        }
    }
}
