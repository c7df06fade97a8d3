using Procyon.Runtime;

namespace Procyon.Server.Api;

/// <summary>A 200 whose body is a call's value, the bytes the host wrote: no serializer on the way, so no depth limit but the host's.</summary>
internal sealed class ValueResult(Utf8Json value) : IResult
{
    private const string ContentType = "application/json; charset=utf-8";

    public Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.ContentType = ContentType;
        response.ContentLength = value.Utf8.Length;
        return response.Body.WriteAsync(value.Utf8).AsTask();
    }
}
