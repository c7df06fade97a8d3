using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Procyon.Server.Api;

/// <summary>
/// Endpoint metadata: the endpoint reads its body as raw bytes of <see cref="ContentType"/>
/// (which the OpenAPI document, and so Swagger UI's file picker, shows). Not <c>Accepts</c>,
/// whose content-type matching would refuse the other content types clients send (curl's
/// <c>-d</c> sends a form's).
/// </summary>
internal sealed record BinaryRequestBody(string ContentType, string Description);

/// <summary>Writes <see cref="BinaryRequestBody"/> into the operation as a required binary body.</summary>
internal sealed class BinaryRequestBodyFilter : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        if (context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<BinaryRequestBody>().FirstOrDefault() is not { } body)
        {
            return;
        }
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Description = body.Description,
            Content = new Dictionary<string, IOpenApiMediaType>
            {
                [body.ContentType] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" } },
            },
        };
    }
}
