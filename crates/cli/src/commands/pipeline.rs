//! `create`, `update`, `get`: pipeline declarations.

use pipewright_core::PipelineDeclaration;

use super::{print_json, Ctx};
use crate::client::{CliError, EXIT_OK, EXIT_USAGE};
use crate::{convert, json};

fn to_sdk(
    declaration: &PipelineDeclaration,
) -> Result<aws_sdk_codepipeline::types::PipelineDeclaration, CliError> {
    convert::pipeline(declaration).map_err(|e| {
        CliError::new(
            "InvalidStructureException",
            format!("cannot express the declaration with the SDK: {e}"),
            EXIT_USAGE,
        )
    })
}

fn loaded(declaration: Option<&PipelineDeclaration>) -> Result<&PipelineDeclaration, CliError> {
    declaration.ok_or_else(|| CliError::new("Internal", "no declaration was read", EXIT_USAGE))
}

/// CreatePipeline.
pub async fn create(ctx: &Ctx, declaration: Option<&PipelineDeclaration>) -> Result<i32, CliError> {
    let declaration = loaded(declaration)?;
    let out = ctx
        .client
        .create_pipeline()
        .pipeline(to_sdk(declaration)?)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    if ctx.json() {
        print_json(&json::create_pipeline(&out));
    } else {
        let version = out.pipeline().and_then(|p| p.version()).unwrap_or(1);
        println!(
            "created pipeline {} (version {version}, {} stages)",
            declaration.name,
            declaration.stages.len()
        );
    }
    Ok(EXIT_OK)
}

/// UpdatePipeline; the current version is read first when the file names none.
pub async fn update(ctx: &Ctx, declaration: Option<&PipelineDeclaration>) -> Result<i32, CliError> {
    let mut declaration = loaded(declaration)?.clone();
    if declaration.version.is_none() {
        let current = ctx
            .client
            .get_pipeline()
            .name(&declaration.name)
            .send()
            .await
            .map_err(|e| ctx.sdk(e))?;
        declaration.version = current
            .pipeline()
            .and_then(|p| p.version())
            .and_then(|v| u32::try_from(v).ok());
    }
    let out = ctx
        .client
        .update_pipeline()
        .pipeline(to_sdk(&declaration)?)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    if ctx.json() {
        print_json(&json::update_pipeline(&out));
    } else {
        match out.pipeline().and_then(|p| p.version()) {
            Some(v) => println!("updated pipeline {} to version {v}", declaration.name),
            None => println!("updated pipeline {}", declaration.name),
        }
    }
    Ok(EXIT_OK)
}

/// GetPipeline, printed as its JSON (what `update -f` reads back) whatever `--output` says.
pub async fn get(ctx: &Ctx, name: &str, version: Option<i32>) -> Result<i32, CliError> {
    let out = ctx
        .client
        .get_pipeline()
        .name(name)
        .set_version(version)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    print_json(&json::get_pipeline(&out));
    Ok(EXIT_OK)
}
