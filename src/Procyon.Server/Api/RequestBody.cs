using System.Buffers;

namespace Procyon.Server.Api;

/// <summary>The request body was larger than the endpoint accepts (413).</summary>
internal sealed class PayloadTooLargeException(int limit) : Exception($"the request body is larger than the limit of {limit} bytes");

internal static class RequestBody
{
    /// <summary>Reads the whole body, refusing it as soon as it passes <paramref name="limit"/> bytes.</summary>
    public static async Task<byte[]> ReadAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
        {
            throw new PayloadTooLargeException(limit);
        }
        if (request.ContentLength is { } length)
        {
            return await ReadExactlyAsync(request.Body, (int)length, cancellationToken);
        }
        var buffer = new ArrayBufferWriter<byte>(Math.Min(4096, limit) + 1);
        while (true)
        {
            var read = await request.Body.ReadAsync(buffer.GetMemory(4096), cancellationToken);
            if (read == 0)
            {
                return buffer.WrittenSpan.ToArray();
            }
            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
            {
                throw new PayloadTooLargeException(limit);
            }
        }
    }

    /// <summary>A body of a declared length, into an array of that size (the server ends a body at its declared length).</summary>
    private static async Task<byte[]> ReadExactlyAsync(Stream body, int length, CancellationToken cancellationToken)
    {
        var bytes = new byte[length];
        var read = await body.ReadAtLeastAsync(bytes, length, throwOnEndOfStream: false, cancellationToken);
        return read == length ? bytes : bytes[..read];
    }
}
