using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Procyon.Runtime;

namespace Procyon.Server.Api;

/// <summary>The one mapping from call failures and domain exceptions to HTTP problems.</summary>
internal static class ProblemMapping
{
    public static (int Status, string Title) ForFailure(CallFailure failure) => failure switch
    {
        CallFailure.TokenRequired => (StatusCodes.Status401Unauthorized, "Token required"),
        CallFailure.UnknownDatabase => (StatusCodes.Status404NotFound, "Unknown database"),
        CallFailure.UnknownFunction => (StatusCodes.Status404NotFound, "Unknown function"),
        CallFailure.BadArguments => (StatusCodes.Status400BadRequest, "Bad arguments"),
        CallFailure.ReducerFailed => (StatusCodes.Status422UnprocessableEntity, "The reducer failed"),
        CallFailure.Contention => (StatusCodes.Status503ServiceUnavailable, "Contention"),
        CallFailure.Trapped => (StatusCodes.Status500InternalServerError, "The module trapped"),
        CallFailure.Timeout => (StatusCodes.Status504GatewayTimeout, "Deadline exceeded"),
        CallFailure.TransactionTimeout => (StatusCodes.Status504GatewayTimeout, "Transaction deadline exceeded"),
        CallFailure.Overloaded => (StatusCodes.Status503ServiceUnavailable, "Overloaded"),
        CallFailure.Unavailable => (StatusCodes.Status503ServiceUnavailable, "Database unavailable"),
        CallFailure.TooManyCalls => (StatusCodes.Status429TooManyRequests, "Too many calls"),
        CallFailure.Cancelled => (StatusCodes.Status503ServiceUnavailable, "Shutting down"),
        CallFailure.CancelledByRequest => (StatusCodes.Status409Conflict, "Cancelled"),
        _ => throw new ArgumentOutOfRangeException(nameof(failure), failure, "not a failure"),
    };

    public static IResult Problem(CallResult result) => Problem(result.Failure, result.Error, result.Db, result.Fn);

    public static IResult Problem(CallFailure failure, string? detail, string db, string? fn)
    {
        var (status, title) = ForFailure(failure);
        return TypedResults.Problem(detail, statusCode: status, title: title, extensions: new Dictionary<string, object?>
        {
            ["db"] = db,
            ["fn"] = fn,
        });
    }
}

/// <summary>Turns domain exceptions thrown by endpoints into problem+json.</summary>
internal sealed class ProblemExceptionHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (status, title) = exception switch
        {
            ModuleRejectedException => (StatusCodes.Status400BadRequest, "Module rejected"),
            PayloadTooLargeException => (StatusCodes.Status413PayloadTooLarge, "Payload too large"),
            Storage.Tables.SchemaConflictException => (StatusCodes.Status409Conflict, "Tables changed"),
            Storage.Tables.TableNameTakenException => (StatusCodes.Status400BadRequest, "Module rejected"),
            Storage.Tables.MigrationFailedException => (StatusCodes.Status409Conflict, "Migration failed"),
            Storage.Tables.TableBusyException => (StatusCodes.Status503ServiceUnavailable, "Table busy"),
            InitReducerFailedException => (StatusCodes.Status422UnprocessableEntity, "The init reducer failed"),
            Storage.NotOwnerException => (StatusCodes.Status403Forbidden, "Not the owner"),
            Storage.DatabaseLimitException => (StatusCodes.Status403Forbidden, "Database limit reached"),
            Storage.Tables.QueryRejectedException => (StatusCodes.Status400BadRequest, "Query rejected"),
            Storage.Tables.QueryForbiddenException => (StatusCodes.Status403Forbidden, "Private table"),
            Storage.Tables.AnswerTooLargeException => (StatusCodes.Status413PayloadTooLarge, "Answer too large"),
            Storage.OverloadedException => (StatusCodes.Status503ServiceUnavailable, "Overloaded"),
            BadHttpRequestException bad => (bad.StatusCode, "Bad request"),
            Npgsql.NpgsqlException => (StatusCodes.Status503ServiceUnavailable, "Database unavailable"),
            _ => (0, ""),
        };
        if (status == 0)
        {
            return false;
        }
        httpContext.Response.StatusCode = status;
        if (exception is Storage.OverloadedException or Storage.Tables.TableBusyException)
        {
            httpContext.Response.Headers.RetryAfter = "1";
        }
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = new ProblemDetails { Status = status, Title = title, Detail = exception.Message },
        });
    }
}
